// The tokenizer.json "pre_tokenizer": splits normalized text into the words the BPE model sees.
// Supports Sequence, Split (String or Regex pattern, all five delimiter behaviours, invert) and
// ByteLevel (optional prefix space, optional GPT-2 regex split, bytes -> byte-level alphabet).
// Llama 3 declares Sequence[Split(Llama-3 regex, Isolated), ByteLevel(use_regex=false)].
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tokenizer/json_fields.h"
#include "tokenizer/pattern.h"

namespace tandem::tokenizer {

// What Split does with the pattern's matches (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  // `node` may be null (the whole segment is one word).
  static PreTokenizer from_json(const Json& node, const std::string& where);

  // The words of `text` in order; empty words are dropped.
  [[nodiscard]] std::vector<std::string> split(std::string_view text) const;
  // The same words as views into `text` or into `storage` (both must outlive them): no string
  // per word.
  void split(std::string_view text, std::vector<std::string_view>& words,
             std::string& storage) const;

 private:
  struct Split {
    Pattern pattern;
    SplitBehavior behavior;
    bool invert;  // the pattern marks what to keep rather than the delimiters
  };
  struct ByteLevel {
    bool add_prefix_space;
    std::optional<Pattern> gpt2_split;  // set when use_regex is true
  };
  using Step = std::variant<Split, ByteLevel>;

  void add_steps(const Json& node, const std::string& where);

  std::vector<Step> steps_;
};

// Splits `text` around `pattern`'s matches the way tokenizers' NormalizedString::split does;
// returns the non-empty pieces. Exposed for tests.
[[nodiscard]] std::vector<std::string> split_by_pattern(std::string_view text,
                                                        const Pattern& pattern,
                                                        SplitBehavior behavior, bool invert);

// Each byte of `text` as its byte-level alphabet character.
[[nodiscard]] std::string to_byte_level(std::string_view text);

}  // namespace tandem::tokenizer
