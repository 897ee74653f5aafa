// ChatTemplate: parse once, render with a fresh RenderState per call.
#include "chat/chat_template.h"

#include <new>

#include "chat/ast.h"
#include "chat/evaluator.h"
#include "chat/parser.h"

namespace tandem::chat {

ChatTemplate::ChatTemplate(std::string source)
    : source_(std::move(source)),
      program_(std::make_shared<const Program>(parse_template(source_))) {}

std::string ChatTemplate::render(const nlohmann::ordered_json& context,
                                 const RenderOptions& options) const {
  if (!context.is_object())
    throw TemplateError(
        fmt::format("render context must be a JSON object, not {}", context.type_name()));
  RenderState state(options);
  auto root = std::make_shared<Scope>();
  std::string out;
  try {
    for (const auto& [key, value] : context.items()) root->vars[key] = Value::from_json(value);
    render_program(state, *program_, root, out);
  } catch (const TemplateError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw TemplateError("out of memory while rendering the chat template");
  } catch (const std::exception& e) {
    throw TemplateError(std::string("internal error while rendering: ") + e.what());
  }
  return out;
}

std::string render_chat(const ChatTemplate& chat_template, const ChatInput& input,
                        const RenderOptions& options) {
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  context["messages"] = input.messages;
  context["tools"] = input.tools;
  context["documents"] = input.documents;
  context["add_generation_prompt"] = input.generation_prompt == GenerationPrompt::kAdd;
  if (input.bos_token.has_value()) context["bos_token"] = *input.bos_token;
  if (input.eos_token.has_value()) context["eos_token"] = *input.eos_token;
  if (!input.extra.is_null()) {
    if (!input.extra.is_object())
      throw TemplateError(fmt::format("extra chat template variables must be a JSON object, not {}",
                                      input.extra.type_name()));
    for (const auto& [key, value] : input.extra.items()) {
      if (key == "messages" || key == "tools" || key == "documents" ||
          key == "add_generation_prompt")
        throw TemplateError(
            fmt::format("extra chat template variable '{}' would replace a reserved one", key));
      context[key] = value;
    }
  }
  return chat_template.render(context, options);
}

}  // namespace tandem::chat
