// ChatPromptRenderer: a chat request's messages -> the prompt text, through the model's chat
// template (or --chat-template) with vLLM's conventions: the tokenizer's bos/eos tokens as
// variables, chat_template_kwargs as extra variables, tools passed through, and
// continue_final_message cutting the render right after the last message's content.
// Template failures become ApiError 400 carrying the template's message.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

namespace tandem {

class Tokenizer;

struct ChatPromptInput {
  const nlohmann::ordered_json& messages;  // array of message objects
  const nlohmann::ordered_json& tools;     // array or null
  const nlohmann::ordered_json& kwargs;    // object (chat_template_kwargs) or null
  bool add_generation_prompt = true;
  bool continue_final_message = false;
};

class ChatPromptRenderer {
 public:
  // Parses the template; throws tandem::Error (a TemplateError) when it does not parse.
  ChatPromptRenderer(std::string template_source, std::optional<std::string> bos_token,
                     std::optional<std::string> eos_token);

  // The prompt text; ApiError 400 for a template error or a final message it cannot continue.
  [[nodiscard]] std::string render(const ChatPromptInput& input) const;

 private:
  chat::ChatTemplate template_;
  std::optional<std::string> bos_token_, eos_token_;
};

// The template source `--chat-template` names, as vLLM reads it: the contents of the file when
// `value` is a path to one, else the value itself if it looks like a Jinja template ("{" in
// it); throws tandem::Error otherwise.
std::string read_chat_template_arg(const std::string& value);

}  // namespace tandem
