// Chat prompt rendering with vLLM's conventions around the Jinja renderer.
#include "server/chat_prompt.h"

#include <system_error>

#include "core/error.h"
#include "core/json_file.h"
#include "server/openai_errors.h"

namespace tandem {
namespace {

std::string_view trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  size_t begin = s.find_first_not_of(ws);
  if (begin == std::string_view::npos) return {};
  size_t end = s.find_last_not_of(ws);
  return s.substr(begin, end - begin + 1);
}

std::string_view ltrim(std::string_view s) {
  size_t begin = s.find_first_not_of(" \t\n\r\f\v");
  return begin == std::string_view::npos ? std::string_view() : s.substr(begin);
}

// transformers' continue_final_message: keep the render up to the end of the final message's
// content, so the model continues it instead of starting a new turn.
std::string cut_after_final_message(std::string rendered, const nlohmann::ordered_json& messages) {
  const nlohmann::ordered_json& last = messages.back();
  auto content = last.find("content");
  if (content == last.end() || !content->is_string()) {
    fail_param("continue_final_message",
               "continue_final_message needs the final message to have text content");
  }
  const std::string& text = content->get_ref<const std::string&>();
  size_t at = rendered.rfind(trim(text));
  if (at == std::string::npos || trim(text).empty()) {
    fail_param("continue_final_message",
               "continue_final_message is set but the final message does not appear in the "
               "chat after applying the chat template");
  }
  std::string_view lstripped = ltrim(text);
  bool exact = std::string_view(rendered).substr(at, lstripped.size()) == lstripped;
  rendered.resize(at + (exact ? lstripped.size() : trim(text).size()));
  return rendered;
}

}  // namespace

ChatPromptRenderer::ChatPromptRenderer(std::string template_source,
                                       std::optional<std::string> bos_token,
                                       std::optional<std::string> eos_token)
    : template_(std::move(template_source)),
      bos_token_(std::move(bos_token)),
      eos_token_(std::move(eos_token)) {}

std::string ChatPromptRenderer::render(const ChatPromptInput& input) const {
  chat::ChatInput chat_input;
  chat_input.messages = input.messages;
  chat_input.generation_prompt = input.add_generation_prompt ? chat::GenerationPrompt::kAdd
                                                             : chat::GenerationPrompt::kOmit;
  chat_input.tools = input.tools;
  chat_input.bos_token = bos_token_;
  chat_input.eos_token = eos_token_;
  chat_input.extra = input.kwargs;
  std::string rendered;
  try {
    rendered = chat::render_chat(template_, chat_input);
  } catch (const chat::TemplateError& e) {
    throw ApiError(HttpStatus::kBadRequest, e.what(), std::string("messages"));
  }
  if (input.continue_final_message) return cut_after_final_message(rendered, input.messages);
  return rendered;
}

std::string read_chat_template_arg(const std::string& value) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(value, ec)) return read_file(value);
  TANDEM_CHECK(value.find('{') != std::string::npos,
               "--chat-template: '{}' is neither a readable file nor a Jinja template", value);
  return value;
}

}  // namespace tandem
