// json.dumps emulation.
#include "chat/python_json.h"

#include <algorithm>
#include <cmath>

#include "chat/template_error.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

void append_u_escape(std::string& out, unsigned unit) { out += fmt::format("\\u{:04x}", unit); }

void append_json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t cp = next_code_point(s, pos);
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp < 0x20 || (ensure_ascii && cp == 0x7F)) {
      append_u_escape(out, static_cast<unsigned>(cp));
    } else if (ensure_ascii && cp > 0x7F) {
      if (cp >= 0x10000) {
        const char32_t v = cp - 0x10000;
        append_u_escape(out, 0xD800 + static_cast<unsigned>(v >> 10));
        append_u_escape(out, 0xDC00 + static_cast<unsigned>(v & 0x3FF));
      } else {
        append_u_escape(out, static_cast<unsigned>(cp));
      }
    } else {
      append_utf8(out, cp);
    }
  }
  out.push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return format_python_float(d);
}

class JsonWriter {
 public:
  JsonWriter(RenderState& state, const JsonDumpOptions& options)
      : state_(state), options_(options) {}

  std::string run(const Value& v) {
    write(v, 0);
    state_.charge_bytes(out_.size());
    return std::move(out_);
  }

 private:
  void newline(int level) {
    if (!options_.indent.has_value()) return;
    out_.push_back('\n');
    for (int i = 0; i < level; ++i) out_ += *options_.indent;
    state_.check_string_size(out_.size());
  }

  void write(const Value& v, int level) {
    state_.check_string_size(out_.size());
    switch (v.kind()) {
      case ValueKind::kNone:
        out_ += "null";
        return;
      case ValueKind::kBool:
        out_ += v.as_bool() ? "true" : "false";
        return;
      case ValueKind::kInt:
        out_ += std::to_string(v.as_int());
        return;
      case ValueKind::kFloat:
        out_ += json_float(v.as_float());
        return;
      case ValueKind::kString:
        append_json_string(out_, v.as_string(), options_.ensure_ascii);
        return;
      case ValueKind::kList:
        if (!v.is_list_or_tuple()) break;
        write_list(v.as_list(), level);
        return;
      case ValueKind::kDict:
        write_dict(v.as_dict(), level);
        return;
      default:
        break;
    }
    template_fail("Object of type {} is not JSON serializable", v.type_name());
  }

  void write_list(const std::vector<Value>& items, int level) {
    if (items.empty()) {
      out_ += "[]";
      return;
    }
    out_.push_back('[');
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += options_.item_separator;
      newline(level + 1);
      write(items[i], level + 1);
    }
    newline(level);
    out_.push_back(']');
  }

  std::string key_string(const Value& key) const {
    switch (key.kind()) {
      case ValueKind::kString:
        return key.as_string();
      case ValueKind::kBool:
        return key.as_bool() ? "true" : "false";
      case ValueKind::kInt:
        return std::to_string(key.as_int());
      case ValueKind::kFloat:
        return json_float(key.as_float());
      case ValueKind::kNone:
        return "null";
      default:
        template_fail("keys must be str, int, float, bool or None, not {}", key.type_name());
    }
  }

  void write_dict(const Dict& dict, int level) {
    if (dict.size() == 0) {
      out_ += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& entry : dict.entries()) entries.push_back(&entry);
    if (options_.sort_keys)
      std::stable_sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) {
        return compare_values(a->first, b->first) < 0;
      });
    out_.push_back('{');
    bool first = true;
    for (const auto* entry : entries) {
      if (!first) out_ += options_.item_separator;
      first = false;
      newline(level + 1);
      append_json_string(out_, key_string(entry->first), options_.ensure_ascii);
      out_ += options_.key_separator;
      write(entry->second, level + 1);
    }
    newline(level);
    out_.push_back('}');
  }

  RenderState& state_;
  const JsonDumpOptions& options_;
  std::string out_;
};

}  // namespace

std::string python_json_dumps(RenderState& state, const Value& v, const JsonDumpOptions& options) {
  return JsonWriter(state, options).run(v);
}

}  // namespace tandem::chat
