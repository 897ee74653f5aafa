// /v1/completions: parse, tokenize, plan the choices, then respond whole or as SSE.
#include "server/completion_handler.h"

#include "core/error.h"
#include "server/generation.h"
#include "server/openai_errors.h"
#include "server/openai_protocol.h"
#include "server/openai_responses.h"
#include "server/request_planning.h"
#include "server/response_streaming.h"

namespace tandem {
namespace {

std::vector<PlannedPrompt> tokenize_prompts(const ServingContext& ctx,
                                            const CompletionRequest& request) {
  bool add_special = request.common.add_special_tokens.value_or(true);
  std::vector<PlannedPrompt> prompts;
  for (const PromptInput& input : request.prompts) {
    PlannedPrompt prompt;
    if (const auto* text = std::get_if<std::string>(&input)) {
      try {
        for (int id : ctx.tokenizer->encode(*text, add_special)) prompt.ids.push_back(id);
      } catch (const Error& e) {
        fail_param("prompt", "The prompt cannot be tokenized: {}", e.what());
      }
      prompt.echo_text = *text;
    } else {
      prompt.ids = std::get<std::vector<int32_t>>(input);
      check_token_ids(ctx.model, prompt.ids, "prompt");
      if (request.common.echo) {
        std::vector<int> ids(prompt.ids.begin(), prompt.ids.end());
        prompt.echo_text = ctx.tokenizer->decode(ids, request.common.skip_special_tokens);
      }
    }
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

// Each choice's prompt ids, by choice index (return_token_ids).
std::vector<std::vector<int32_t>> prompt_ids_by_choice(const std::vector<ChoiceSpec>& choices) {
  std::vector<std::vector<int32_t>> ids(choices.size());
  for (const ChoiceSpec& c : choices) ids.at(size_t(c.index)) = c.prompt_ids;
  return ids;
}

// `prompt_ids`: prompt_ids_by_choice when the request asked for return_token_ids, else empty.
void stream_completion(httplib::Response& res, std::shared_ptr<Generation> generation,
                       const ResponseHeader& header, const GenerationRequest& common,
                       int num_choices, std::vector<std::vector<int32_t>> prompt_ids) {
  int top = common.params.logprobs.value_or(-1);
  bool include_usage = common.include_usage;
  bool return_token_ids = common.return_token_ids;
  // text_offset of the next token, per choice (counts code points of the tokens so far).
  auto offsets = std::make_shared<std::vector<int64_t>>(num_choices, 0);
  // Whether a choice's first chunk, which carries its prompt ids, has gone out.
  auto started = std::make_shared<std::vector<char>>(num_choices, 0);
  auto prompts = std::make_shared<std::vector<std::vector<int32_t>>>(std::move(prompt_ids));
  StreamFormat format;
  format.object = "text_completion";
  format.include_usage = include_usage;
  format.chunk = [header, top, include_usage, return_token_ids, offsets, started,
                  prompts](const ChoiceDelta& delta) {
    int64_t& offset = offsets->at(delta.index);
    const std::vector<int32_t>* prompt = nullptr;
    if (return_token_ids && !started->at(delta.index)) prompt = &prompts->at(delta.index);
    started->at(delta.index) = 1;
    OrderedJson chunk =
        completion_chunk(header, delta, top, offset, include_usage, return_token_ids, prompt);
    if (delta.logprob) offset += count_code_points(delta.logprob->token);
    return chunk;
  };
  stream_generation(res, std::move(generation), header, std::move(format));
}

}  // namespace

void CompletionHandler::handle(const httplib::Request& req, httplib::Response& res) const {
  CompletionRequest request = parse_completion_request(req.body, ctx_.model.default_params);
  GenerationRequest& common = request.common;
  ResponseHeader header{new_request_id("cmpl"), unix_time_now(),
                        resolve_model_name(ctx_.model, common.model)};
  if (common.echo && common.params.logprobs) {
    fail_param("echo", "'echo' together with 'logprobs' is not supported (no prompt logprobs)");
  }
  std::vector<ChoiceSpec> choices = plan_choices(ctx_, tokenize_prompts(ctx_, request), common,
                                                 MaxTokensDefault{kDefaultCompletionMaxTokens});
  int num_choices = int(choices.size());
  std::vector<std::vector<int32_t>> prompt_ids;
  if (common.return_token_ids) prompt_ids = prompt_ids_by_choice(choices);
  GenerationOptions options{common.skip_special_tokens, common.params.logprobs.has_value()};
  auto generation = std::make_shared<Generation>(ctx_, header.id, std::move(choices), options);
  if (common.stream) {
    stream_completion(res, std::move(generation), header, common, num_choices,
                      std::move(prompt_ids));
    return;
  }
  std::vector<ChoiceResult> results = collect_choices(*generation, num_choices);
  Usage usage{generation->prompt_tokens(), generation->completion_tokens()};
  res.set_content(dump_json(completion_response(header, results,
                                                common.params.logprobs.value_or(-1), usage,
                                                common.return_token_ids ? &prompt_ids : nullptr)),
                  "application/json");
}

}  // namespace tandem
