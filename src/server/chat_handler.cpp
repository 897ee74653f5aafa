// /v1/chat/completions: render, tokenize, plan the choices, then respond whole or as SSE.
#include "server/chat_handler.h"

#include "core/error.h"
#include "server/chat_prompt.h"
#include "server/generation.h"
#include "server/openai_errors.h"
#include "server/openai_protocol.h"
#include "server/openai_responses.h"
#include "server/request_planning.h"
#include "server/response_streaming.h"

namespace tandem {
namespace {

// vLLM's chat echo: the last message's content, when it is the assistant's (being continued).
std::string chat_echo_text(const ChatCompletionRequest& request) {
  const OrderedJson& last = request.messages.back();
  if (last.value("role", "") != "assistant") return "";
  auto content = last.find("content");
  return content != last.end() && content->is_string() ? content->get<std::string>() : "";
}

void stream_chat(httplib::Response& res, std::shared_ptr<Generation> generation,
                 const ResponseHeader& header, const ChatCompletionRequest& request,
                 int num_choices) {
  bool logprobs = request.logprobs, include_usage = request.common.include_usage;
  StreamFormat format;
  format.object = "chat.completion.chunk";
  format.include_usage = include_usage;
  format.opening = [header, num_choices, include_usage] {
    std::vector<OrderedJson> chunks;
    for (int i = 0; i < num_choices; ++i) {
      chunks.push_back(chat_role_chunk(header, i, include_usage));
    }
    return chunks;
  };
  format.chunk = [header, logprobs, include_usage](const ChoiceDelta& delta) {
    return chat_chunk(header, delta, logprobs, include_usage);
  };
  stream_generation(res, std::move(generation), header, std::move(format));
}

}  // namespace

std::vector<int32_t> chat_prompt_ids(const ServingContext& ctx, const ChatPromptInput& input,
                                     bool add_special_tokens) {
  if (!ctx.chat) {
    throw ApiError(HttpStatus::kBadRequest,
                   "This model's tokenizer has no chat template and the server was started "
                   "without --chat-template, so chat requests cannot be rendered",
                   std::string("messages"));
  }
  std::string prompt = ctx.chat->render(input);
  std::vector<int32_t> ids;
  try {
    for (int id : ctx.tokenizer->encode(prompt, add_special_tokens)) ids.push_back(id);
  } catch (const Error& e) {
    fail_param("messages", "The rendered chat prompt cannot be tokenized: {}", e.what());
  }
  return ids;
}

void ChatHandler::handle(const httplib::Request& req, httplib::Response& res) const {
  ChatCompletionRequest request =
      parse_chat_completion_request(req.body, ctx_.model.default_params);
  GenerationRequest& common = request.common;
  ResponseHeader header{new_request_id("chatcmpl"), unix_time_now(),
                        resolve_model_name(ctx_.model, common.model)};
  ChatPromptInput input{request.messages, request.tools, request.template_kwargs,
                        request.add_generation_prompt, request.continue_final_message};
  PlannedPrompt prompt{chat_prompt_ids(ctx_, input, common.add_special_tokens.value_or(false)),
                       chat_echo_text(request)};
  std::vector<PlannedPrompt> prompts;
  prompts.push_back(std::move(prompt));
  std::vector<ChoiceSpec> choices =
      plan_choices(ctx_, std::move(prompts), common, MaxTokensDefault{std::nullopt});
  int num_choices = int(choices.size());
  GenerationOptions options{common.skip_special_tokens, request.logprobs};
  auto generation = std::make_shared<Generation>(ctx_, header.id, std::move(choices), options);
  if (common.stream) {
    stream_chat(res, std::move(generation), header, request, num_choices);
    return;
  }
  std::vector<ChoiceResult> results = collect_choices(*generation, num_choices);
  Usage usage{generation->prompt_tokens(), generation->completion_tokens()};
  res.set_content(dump_json(chat_response(header, results, request.logprobs, usage)),
                  "application/json");
}

}  // namespace tandem
