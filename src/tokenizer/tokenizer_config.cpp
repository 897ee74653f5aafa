// Parsing of tokenizer_config.json. Special tokens may be strings or AddedToken objects
// ({"content": ..., "__type": "AddedToken"}); chat_template may be a string or a list of
// {"name", "template"} entries.
#include "tokenizer/tokenizer_config.h"

#include "core/error.h"
#include "core/json_file.h"

namespace tandem::tokenizer {
namespace {

std::optional<std::string> special_token(const Json& node, std::string_view key,
                                         const std::string& where) {
  auto it = node.find(key);
  if (it == node.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return require_string(*it, "content", fmt::format("{}.{}", where, key));
  fail("{}.{}: expected a string or {{\"content\": ...}}, got {}", where, key, it->dump());
}

std::optional<bool> optional_flag(const Json& node, std::string_view key,
                                  const std::string& where) {
  auto it = node.find(key);
  if (it == node.end() || it->is_null()) return std::nullopt;
  return optional_bool(node, key, where, false);
}

std::map<std::string, std::string> parse_chat_templates(const Json& node,
                                                        const std::string& where) {
  std::map<std::string, std::string> out;
  auto it = node.find("chat_template");
  if (it == node.end() || it->is_null()) return out;
  if (it->is_string()) {
    out["default"] = it->get<std::string>();
    return out;
  }
  if (!it->is_array())
    fail("{}.chat_template: expected a string or a list, got {}", where, it->type_name());
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string item = fmt::format("{}.chat_template[{}]", where, i);
    out[require_string((*it)[i], "name", item)] = require_string((*it)[i], "template", item);
  }
  return out;
}

}  // namespace

TokenizerConfig TokenizerConfig::from_json(const Json& node, const std::string& where) {
  if (!node.is_object()) fail("{}: expected a JSON object, got {}", where, node.type_name());
  TokenizerConfig c;
  c.bos_token = special_token(node, "bos_token", where);
  c.eos_token = special_token(node, "eos_token", where);
  c.add_bos_token = optional_flag(node, "add_bos_token", where);
  c.add_eos_token = optional_flag(node, "add_eos_token", where);
  c.chat_templates = parse_chat_templates(node, where);
  return c;
}

TokenizerConfig TokenizerConfig::load(const std::filesystem::path& dir) {
  const auto path = dir / "tokenizer_config.json";
  TokenizerConfig c;
  if (std::filesystem::exists(path)) c = from_json(read_json_file(path), path.string());
  const auto jinja = dir / "chat_template.jinja";
  if (!c.chat_templates.contains("default") && std::filesystem::exists(jinja))
    c.chat_templates["default"] = read_file(jinja);
  return c;
}

}  // namespace tandem::tokenizer
