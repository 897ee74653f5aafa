// Patterns from tokenizer.json: {"String": "..."} (a literal) or {"Regex": "..."} (compiled with
// PCRE2, UTF + Unicode properties, JIT when available). The regexes in tokenizer.json are written
// for Oniguruma; PCRE2 accepts the constructs they use (\p{L}, \p{N}, (?i:...), look-ahead), and
// \s / \S are rewritten to Oniguruma's meaning (Unicode White_Space: PCRE2's \s adds U+180E).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_fields.h"

namespace tandem::tokenizer {

struct Match {
  size_t begin = 0;  // byte offsets into the searched text, [begin, end)
  size_t end = 0;
};

// A compiled PCRE2 regex; immutable after construction, so safe to share between threads.
class Regex {
 public:
  // Throws tandem::Error naming `where` and the pattern if it does not compile.
  Regex(std::string_view pattern, std::string_view where);

  // All non-overlapping matches left to right, like Oniguruma's find_iter (an empty match right
  // after the previous match is skipped by one character). `text` must be valid UTF-8.
  [[nodiscard]] std::vector<Match> find_all(std::string_view text) const;
  // The first match at or after byte `start`.
  [[nodiscard]] std::optional<Match> find(std::string_view text, size_t start = 0) const;

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string where_;
};

// A literal or a regex, as a tokenizer.json "pattern" member declares it.
class Pattern {
 public:
  static Pattern from_json(const Json& node, const std::string& where);
  static Pattern literal(std::string text);

  // Non-overlapping matches left to right (a literal never matches when it is empty).
  [[nodiscard]] std::vector<Match> find_all(std::string_view text) const;
  // `text` with every match replaced by `content`.
  [[nodiscard]] std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  std::optional<Regex> regex_;
};

}  // namespace tandem::tokenizer
