// `tandem chat-template --model DIR [--template FILE] --messages JSON [--tools JSON]
//  [--add-generation-prompt]`: prints the prompt the chat template renders for `messages`,
// exactly as the server would build it (a debugging aid). JSON arguments may be `@FILE`.
#include <cstdio>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "command_line.h"
#include "chat/chat_template.h"
#include "commands.h"
#include "core/error.h"
#include "core/json_file.h"
#include "tokenizer/tokenizer.h"

namespace tandem::apps {
namespace {

// Parses a JSON argument given inline or as @FILE; `flag` names it in errors.
nlohmann::ordered_json parse_json_arg(const std::string& flag, const std::string& value) {
  std::string text = value;
  if (!value.empty() && value[0] == '@') text = read_file(value.substr(1));
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", flag, e.what());
  }
}

}  // namespace

int chat_template_command(int argc, char** argv) {
  CLI::App app{"Print the chat-template rendering of a list of messages.", argv[0]};
  std::string model_dir, messages_arg;
  std::optional<std::string> template_file, tools_arg;
  bool add_generation_prompt = false;
  app.add_option("--model", model_dir, "model directory (tokenizer_config.json)")->required();
  app.add_option("--template", template_file, "a Jinja template file overriding the model's");
  app.add_option("--messages", messages_arg, "messages as JSON (or @FILE)")->required();
  app.add_option("--tools", tools_arg, "tool schemas as JSON (or @FILE)");
  app.add_flag("--add-generation-prompt", add_generation_prompt,
               "end with the assistant turn's opening");
  if (std::optional<int> exit_code = parse_command_line(app, argc, argv)) return *exit_code;
  const Tokenizer tokenizer = Tokenizer::load(model_dir);
  std::string source;
  if (template_file) {
    source = read_file(*template_file);
  } else {
    auto t = tokenizer.chat_template();
    TANDEM_CHECK(t.has_value(), "{}: the model in {} has no chat_template (pass --template FILE)",
                 argv[0], model_dir);
    source = *t;
  }
  chat::ChatInput input;
  input.messages = parse_json_arg("--messages", messages_arg);
  TANDEM_CHECK(input.messages.is_array(), "--messages: must be a JSON array of messages");
  if (tools_arg) input.tools = parse_json_arg("--tools", *tools_arg);
  input.generation_prompt =
      add_generation_prompt ? chat::GenerationPrompt::kAdd : chat::GenerationPrompt::kOmit;
  input.bos_token = tokenizer.bos_token();
  input.eos_token = tokenizer.eos_token();
  std::string rendered = chat::render_chat(chat::ChatTemplate(source), input);
  std::fwrite(rendered.data(), 1, rendered.size(), stdout);
  return 0;
}

}  // namespace tandem::apps
