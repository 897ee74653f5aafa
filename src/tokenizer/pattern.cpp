// PCRE2-backed Regex and the String/Regex Pattern of tokenizer.json.
#include "tokenizer/pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0)
    return fmt::format("code {}", code);
  return reinterpret_cast<const char*>(buffer);
}

// Per-call match state: match data sized for the pattern, and (only if the JIT runs out of its
// default 32 KiB machine stack) a larger JIT stack.
class MatchScratch {
 public:
  explicit MatchScratch(const pcre2_code* code)
      : data_(pcre2_match_data_create_from_pattern(code, nullptr)) {
    if (!data_) fail("out of memory creating PCRE2 match data");
  }
  ~MatchScratch() {
    pcre2_match_data_free(data_);
    pcre2_match_context_free(context_);
    pcre2_jit_stack_free(stack_);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;

  pcre2_match_data* data() const { return data_; }
  pcre2_match_context* context() const { return context_; }
  // Gives the JIT a bigger stack; false once the largest one was already tried.
  bool grow_jit_stack() {
    if (stack_size_ >= kMaxJitStack) return false;
    stack_size_ = stack_size_ == 0 ? 1 << 20 : kMaxJitStack;
    pcre2_jit_stack_free(stack_);
    stack_ = pcre2_jit_stack_create(32 * 1024, stack_size_, nullptr);
    if (!context_) context_ = pcre2_match_context_create(nullptr);
    if (!stack_ || !context_) fail("out of memory creating a PCRE2 JIT stack");
    pcre2_jit_stack_assign(context_, nullptr, stack_);
    return true;
  }

 private:
  static constexpr size_t kMaxJitStack = 64 << 20;
  pcre2_match_data* data_ = nullptr;
  pcre2_match_context* context_ = nullptr;
  pcre2_jit_stack* stack_ = nullptr;
  size_t stack_size_ = 0;
};

// Oniguruma's \s is Unicode White_Space: U+0009..U+000D, U+0085 and the Z categories. PCRE2's
// \s (with UCP) also matches U+180E through \h, so \s and \S are spelled out with properties.
constexpr std::string_view kOnigSpaceSet = R"(\t\n\x0B\f\r\x{85}\p{Z})";

// Rewrites \s and \S outside character classes and \s inside them into PCRE2 syntax with
// Oniguruma's meaning; everything else is kept as written.
std::string onig_to_pcre2(std::string_view pattern) {
  std::string out;
  int class_depth = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += class_depth > 0 ? std::string(kOnigSpaceSet) : fmt::format("[{}]", kOnigSpaceSet);
      } else if (e == 'S' && class_depth == 0) {
        out += fmt::format("[^{}]", kOnigSpaceSet);
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out += c;
      // A ']' first in a class (after an optional '^') is a literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out += c;
  }
  return out;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern, std::string_view where) : where_(where) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  auto code = std::make_shared<Code>();
  const std::string translated = onig_to_pcre2(pattern);
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                             PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!code->code)
    fail("{}: regex /{}/ does not compile (PCRE2, as /{}/) at offset {}: {}", where, pattern,
         translated, offset, pcre2_message(error));
  pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);  // failure leaves the interpreter in use
  code_ = std::move(code);
}

std::optional<Match> Regex::find(std::string_view text, size_t start) const {
  if (!unicode::is_valid_utf8(text)) fail("{}: regex applied to text that is not UTF-8", where_);
  MatchScratch scratch(code_->code);
  for (;;) {
    const int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               start, PCRE2_NO_UTF_CHECK, scratch.data(), scratch.context());
    if (rc == PCRE2_ERROR_NOMATCH) return std::nullopt;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && scratch.grow_jit_stack()) continue;
    if (rc < 0) fail("{}: regex match failed: {}", where_, pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data());
    return Match{ovector[0], ovector[1]};
  }
}

std::vector<Match> Regex::find_all(std::string_view text) const {
  if (!unicode::is_valid_utf8(text)) fail("{}: regex applied to text that is not UTF-8", where_);
  MatchScratch scratch(code_->code);
  std::vector<Match> matches;
  size_t start = 0;
  std::optional<size_t> last_end;
  while (start <= text.size()) {
    const int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               start, PCRE2_NO_UTF_CHECK, scratch.data(), scratch.context());
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && scratch.grow_jit_stack()) continue;
    if (rc < 0) fail("{}: regex match failed: {}", where_, pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data());
    const Match m{ovector[0], ovector[1]};
    if (m.begin == m.end && last_end == m.end) {  // no empty match right after the last one
      if (start >= text.size()) break;
      start += unicode::char_length(text, start);
      continue;
    }
    matches.push_back(m);
    last_end = m.end;
    start = m.end;
  }
  return matches;
}

Pattern Pattern::from_json(const Json& node, const std::string& where) {
  if (!node.is_object() || node.size() != 1)
    fail("{}: expected {{\"String\": ...}} or {{\"Regex\": ...}}, got {}", where, node.dump());
  if (node.contains("String")) return literal(require_string(node, "String", where));
  if (node.contains("Regex")) {
    Pattern p;
    p.regex_.emplace(require_string(node, "Regex", where), where);
    return p;
  }
  fail("{}: unsupported pattern kind {} (expected String or Regex)", where, node.begin().key());
}

Pattern Pattern::literal(std::string text) {
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

std::vector<Match> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<Match> matches;
  if (literal_.empty()) return matches;
  for (size_t pos = text.find(literal_); pos != std::string_view::npos;
       pos = text.find(literal_, pos + literal_.size())) {
    matches.push_back({pos, pos + literal_.size()});
  }
  return matches;
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::string out;
  size_t done = 0;
  for (const Match& m : find_all(text)) {
    out.append(text.substr(done, m.begin - done));
    out.append(content);
    done = m.end;
  }
  out.append(text.substr(done));
  return out;
}

}  // namespace tandem::tokenizer
