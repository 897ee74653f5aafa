// The tokenizer.json "normalizer": rewrites each plain-text segment (the text between added
// tokens) before pre-tokenization. Supports Sequence, Prepend and Replace (what SentencePiece-style
// BPE files such as stories260K declare); nested Sequences are flattened into one list of steps.
#pragma once
#include <string>
#include <variant>
#include <vector>

#include "tokenizer/json_fields.h"
#include "tokenizer/pattern.h"

namespace tandem::tokenizer {

class Normalizer {
 public:
  // `node` may be null (no normalization). Throws tandem::Error naming `where` for unknown types.
  static Normalizer from_json(const Json& node, const std::string& where);

  [[nodiscard]] std::string normalize(std::string text) const;

 private:
  struct Prepend {
    std::string prefix;  // added in front of non-empty text only
  };
  struct Replace {
    Pattern pattern;
    std::string content;
  };
  using Step = std::variant<Prepend, Replace>;

  void add_steps(const Json& node, const std::string& where);

  std::vector<Step> steps_;
};

}  // namespace tandem::tokenizer
