// Decoder steps over the list of token strings.
#include "tokenizer/decoder.h"

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer {
namespace {

using Tokens = std::vector<std::string>;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Byte-level tokens -> bytes (a token with a character outside the alphabet keeps its raw
// UTF-8), then the whole byte string through lossy UTF-8 decoding: one output string.
Tokens byte_level(const Tokens& tokens) {
  std::string bytes;
  for (const std::string& token : tokens) {
    const size_t mark = bytes.size();
    bool all_mapped = true;
    for (size_t pos = 0; pos < token.size() && all_mapped;) {
      auto byte = unicode::unicode_to_byte(unicode::next_code_point(token, pos));
      if (byte) bytes += static_cast<char>(*byte);
      all_mapped = byte.has_value();
    }
    if (!all_mapped) bytes.replace(mark, std::string::npos, token);
  }
  return {unicode::utf8_lossy(bytes)};
}

void flush_byte_run(std::string& run, Tokens& out) {
  if (run.empty()) return;
  if (unicode::is_valid_utf8(run)) {
    out.push_back(run);
  } else {
    for (size_t i = 0; i < run.size(); ++i) out.emplace_back(unicode::kReplacement);
  }
  run.clear();
}

// Runs of <0xXX> tokens become their UTF-8 text, or one U+FFFD per byte if the run is invalid.
Tokens byte_fallback(Tokens tokens) {
  Tokens out;
  std::string run;
  for (std::string& token : tokens) {
    if (auto byte = parse_byte_token(token)) {
      run += static_cast<char>(*byte);
      continue;
    }
    flush_byte_run(run, out);
    out.push_back(std::move(token));
  }
  flush_byte_run(run, out);
  return out;
}

std::string strip(const std::string& token, const std::string& c, size_t start, size_t stop) {
  std::string_view t = token;
  for (size_t i = 0; i < start && t.starts_with(c); ++i) t.remove_prefix(c.size());
  for (size_t i = 0; i < stop && t.ends_with(c); ++i) t.remove_suffix(c.size());
  return std::string(t);
}

size_t require_count(const Json& node, std::string_view key, const std::string& where) {
  return static_cast<size_t>(require_index(node, key, where));
}

}  // namespace

std::optional<uint8_t> parse_byte_token(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return std::nullopt;
  const int hi = hex_value(token[3]), lo = hex_value(token[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

Decoder Decoder::from_json(const Json& node, const std::string& where) {
  Decoder d;
  d.present_ = !node.is_null();
  if (d.present_) d.add_steps(node, where);
  return d;
}

void Decoder::add_steps(const Json& node, const std::string& where) {
  const std::string type = type_of(node, where);
  if (type == "Sequence") {
    const Json& list = require_member(node, "decoders", where);
    if (!list.is_array()) fail("{}.decoders: expected an array", where);
    for (size_t i = 0; i < list.size(); ++i)
      add_steps(list[i], fmt::format("{}.decoders[{}]", where, i));
  } else if (type == "ByteLevel") {
    steps_.push_back(ByteLevel{});
  } else if (type == "Replace") {
    steps_.push_back(
        Replace{Pattern::from_json(require_member(node, "pattern", where), where + ".pattern"),
                require_string(node, "content", where)});
  } else if (type == "ByteFallback") {
    steps_.push_back(ByteFallback{});
  } else if (type == "Fuse") {
    steps_.push_back(Fuse{});
  } else if (type == "Strip") {
    std::string content = require_string(node, "content", where);
    if (content.empty() || unicode::char_length(content, 0) != content.size())
      fail("{}.content: expected exactly one character, got \"{}\"", where, content);
    steps_.push_back(Strip{std::move(content), require_count(node, "start", where),
                           require_count(node, "stop", where)});
  } else {
    fail(
        "{}: unsupported decoder type \"{}\" (supported: Sequence, ByteLevel, Replace, "
        "ByteFallback, Fuse, Strip)",
        where, type);
  }
}

bool Decoder::has_byte_fallback() const {
  for (const Step& s : steps_)
    if (std::holds_alternative<ByteFallback>(s)) return true;
  return false;
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (!present_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const Step& step : steps_) {
    if (std::holds_alternative<ByteLevel>(step)) {
      tokens = byte_level(tokens);
    } else if (const auto* r = std::get_if<Replace>(&step)) {
      for (std::string& t : tokens) t = r->pattern.replace_all(t, r->content);
    } else if (std::holds_alternative<ByteFallback>(step)) {
      tokens = byte_fallback(std::move(tokens));
    } else if (std::holds_alternative<Fuse>(step)) {
      std::string joined;
      for (const std::string& t : tokens) joined += t;
      tokens = {std::move(joined)};
    } else {
      const auto& s = std::get<Strip>(step);
      for (std::string& t : tokens) t = strip(t, s.content, s.start, s.stop);
    }
  }
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

}  // namespace tandem::tokenizer
