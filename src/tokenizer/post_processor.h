// The tokenizer.json "post_processor", reduced to what it does to a single sequence's ids:
// TemplateProcessing's "single" template (special tokens before/after sequence $A, e.g. BOS),
// ByteLevel (offsets only: no effect on ids) and Sequence of those.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/json_fields.h"

namespace tandem::tokenizer {

class PostProcessor {
 public:
  // `node` may be null (nothing added).
  static PostProcessor from_json(const Json& node, const std::string& where);
  // A template of the given ids around the sequence (tokenizer_config.json add_bos/eos_token).
  static PostProcessor around(std::vector<int> prefix, std::vector<int> suffix);

  // Adds the special tokens around `ids` (called when encoding with add_special_tokens).
  void apply(std::vector<int>& ids) const;
  [[nodiscard]] const std::vector<int>& prefix() const { return prefix_; }
  [[nodiscard]] const std::vector<int>& suffix() const { return suffix_; }

 private:
  void add(const Json& node, const std::string& where);
  void add_template(const Json& node, const std::string& where);

  std::vector<int> prefix_;  // ids before the sequence
  std::vector<int> suffix_;  // ids after it
};

}  // namespace tandem::tokenizer
