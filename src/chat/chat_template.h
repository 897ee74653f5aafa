// ChatTemplate: a Hugging Face chat template (the Jinja2 `chat_template` of
// tokenizer_config.json), parsed once and rendered many times, concurrently, exactly as
// transformers' apply_chat_template(tokenize=False) renders it: ImmutableSandboxedEnvironment
// with trim_blocks, lstrip_blocks and loopcontrols, plus raise_exception, strftime_now and
// transformers' tojson. Templates and inputs come from requests: every malformed template and
// every runtime failure or exceeded limit is a TemplateError (a tandem::Error) with a line.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chat/render_state.h"
#include "chat/template_error.h"

namespace tandem::chat {

struct Program;

class ChatTemplate {
 public:
  // Parses the template; throws TemplateError on syntax errors.
  explicit ChatTemplate(std::string source);

  // Renders with the members of `context` (a JSON object) as template variables.
  [[nodiscard]] std::string render(const nlohmann::ordered_json& context,
                                   const RenderOptions& options = {}) const;

  [[nodiscard]] const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::shared_ptr<const Program> program_;  // immutable: shared by concurrent renders
};

enum class GenerationPrompt { kOmit, kAdd };

// The variables transformers passes to a chat template.
struct ChatInput {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  GenerationPrompt generation_prompt = GenerationPrompt::kAdd;
  // Tool schemas; null: no tools (the template sees `tools` = None, as in transformers).
  nlohmann::ordered_json tools;
  // RAG documents (transformers' `documents`); null: None.
  nlohmann::ordered_json documents;
  // Unset: the variable is undefined in the template (transformers leaves unset tokens out).
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  // Further variables (e.g. a request's chat_template_kwargs); a JSON object or null. They may
  // override bos_token/eos_token but not messages, tools, documents or add_generation_prompt.
  nlohmann::ordered_json extra;
};

// Renders `input` through the template as apply_chat_template(tokenize=False) would.
[[nodiscard]] std::string render_chat(const ChatTemplate& chat_template, const ChatInput& input,
                                      const RenderOptions& options = {});

}  // namespace tandem::chat
