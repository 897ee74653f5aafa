// tokenizer_config.json: the parts a serving engine needs beyond tokenizer.json (special token
// names, add_bos_token / add_eos_token, chat templates). A missing file means all defaults.
#pragma once
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "tokenizer/json_fields.h"

namespace tandem::tokenizer {

struct TokenizerConfig {
  std::optional<std::string> bos_token;  // token text, e.g. "<|begin_of_text|>"
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;  // only set when the file says so
  std::optional<bool> add_eos_token;
  std::map<std::string, std::string> chat_templates;  // name -> Jinja source

  // Reads <dir>/tokenizer_config.json and <dir>/chat_template.jinja if present.
  static TokenizerConfig load(const std::filesystem::path& dir);
  static TokenizerConfig from_json(const Json& node, const std::string& where);
};

}  // namespace tandem::tokenizer
