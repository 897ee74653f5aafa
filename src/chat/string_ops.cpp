// Python str operations over UTF-8.
#include "chat/string_ops.h"

#include <algorithm>

#include "chat/template_error.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

void check_parts(const std::vector<std::string>& parts, size_t max_parts) {
  if (parts.size() >= max_parts) template_fail("split produced more than {} parts", max_parts);
}

bool is_line_break(char32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
         cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

std::vector<std::string> split_whitespace(std::string_view s, int64_t maxsplit, size_t max_parts) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    // Skip whitespace before the next word.
    while (pos < s.size()) {
      size_t next = pos;
      if (!is_space(next_code_point(s, next))) break;
      pos = next;
    }
    if (pos >= s.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
      parts.emplace_back(s.substr(pos));
      break;
    }
    const size_t start = pos;
    while (pos < s.size()) {
      size_t next = pos;
      if (is_space(next_code_point(s, next))) break;
      pos = next;
    }
    check_parts(parts, max_parts);
    parts.emplace_back(s.substr(start, pos - start));
  }
  return parts;
}

std::vector<std::string> rsplit_whitespace(std::string_view s, int64_t maxsplit, size_t max_parts) {
  // Split from the right: reverse by code points, split, reverse back.
  const std::u32string cps = decode_utf8(s);
  std::vector<std::string> parts;
  size_t end = cps.size();
  while (true) {
    while (end > 0 && is_space(cps[end - 1])) --end;
    if (end == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
      parts.push_back(encode_utf8(std::u32string_view(cps).substr(0, end)));
      break;
    }
    size_t start = end;
    while (start > 0 && !is_space(cps[start - 1])) --start;
    check_parts(parts, max_parts);
    parts.push_back(encode_utf8(std::u32string_view(cps).substr(start, end - start)));
    end = start;
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> split_separator(std::string_view s, std::string_view sep, int64_t maxsplit,
                                         bool from_right, size_t max_parts) {
  if (sep.empty()) template_fail("empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t hit = s.find(sep, start);
      if (hit == std::string_view::npos) break;
      check_parts(parts, max_parts);
      parts.emplace_back(s.substr(start, hit - start));
      start = hit + sep.size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    if (end < sep.size()) break;
    const size_t hit = s.rfind(sep, end - sep.size());
    if (hit == std::string_view::npos) break;
    check_parts(parts, max_parts);
    parts.emplace_back(s.substr(hit + sep.size(), end - hit - sep.size()));
    end = hit;
  }
  parts.emplace_back(s.substr(0, end));
  std::reverse(parts.begin(), parts.end());
  return parts;
}

}  // namespace

std::string py_replace(RenderState& state, std::string_view s, std::string_view old_text,
                       std::string_view new_text, int64_t count) {
  std::string out;
  if (old_text.empty()) {
    // Inserts new_text before every code point and at the end (up to count times).
    const size_t n = utf8_length(s) + 1;
    const size_t inserts = count < 0 ? n : std::min<size_t>(n, static_cast<size_t>(count));
    if (!new_text.empty() && inserts > state.limits().max_output_bytes / new_text.size())
      state.check_string_size(state.limits().max_output_bytes + 1);
    state.check_string_size(s.size() + inserts * new_text.size());
    size_t pos = 0;
    size_t done = 0;
    while (true) {
      if (done < inserts) {
        out += new_text;
        ++done;
      }
      if (pos >= s.size()) break;
      const size_t start = pos;
      next_code_point(s, pos);
      out.append(s.substr(start, pos - start));
    }
    state.charge_bytes(out.size());
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = s.find(old_text, start);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(start, hit - start));
    out.append(new_text);
    state.check_string_size(out.size());
    start = hit + old_text.size();
    ++done;
  }
  out.append(s.substr(start));
  state.check_string_size(out.size());
  state.charge_bytes(out.size());
  return out;
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right, size_t max_parts) {
  if (!sep.has_value())
    return from_right ? rsplit_whitespace(s, maxsplit, max_parts)
                      : split_whitespace(s, maxsplit, max_parts);
  return split_separator(s, *sep, maxsplit, from_right, max_parts);
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends, size_t max_parts) {
  std::vector<std::string> lines;
  size_t start = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t at = pos;
    const char32_t cp = next_code_point(s, pos);
    if (!is_line_break(cp)) continue;
    if (cp == '\r' && pos < s.size() && s[pos] == '\n') ++pos;
    check_parts(lines, max_parts);
    lines.emplace_back(s.substr(start, (keepends ? pos : at) - start));
    start = pos;
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  bool first = true;
  while (pos < s.size()) {
    const char32_t cp = next_code_point(s, pos);
    append_utf8(out, first ? to_upper(cp) : to_lower(cp));
    first = false;
  }
  return out;
}

std::string py_title(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  bool previous_cased = false;
  while (pos < s.size()) {
    const char32_t cp = next_code_point(s, pos);
    const bool cased = is_upper(cp) || is_lower(cp);
    append_utf8(out, !cased ? cp : previous_cased ? to_lower(cp) : to_upper(cp));
    previous_cased = cased;
  }
  return out;
}

std::string py_swapcase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t cp = next_code_point(s, pos);
    append_utf8(out, is_upper(cp) ? to_lower(cp) : is_lower(cp) ? to_upper(cp) : cp);
  }
  return out;
}

size_t code_point_index(std::string_view s, size_t byte_offset) {
  return utf8_length(s.substr(0, byte_offset));
}

}  // namespace tandem::chat
