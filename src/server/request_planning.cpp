// Request planning: model-dependent validation and the prompts x n fan-out.
#include "server/request_planning.h"

#include "server/openai_errors.h"

namespace tandem {
namespace {

[[noreturn]] void context_error(const std::string& message) {
  throw ApiError(HttpStatus::kBadRequest, message, std::string("max_tokens"),
                 std::string("context_length_exceeded"));
}

// The max_tokens one prompt runs with, checked against the context.
int checked_max_tokens(const ServedModel& model, int prompt_len, std::optional<int> requested,
                       MaxTokensDefault fallback) {
  if (prompt_len >= model.max_model_len) {
    context_error(
        fmt::format("This model's maximum context length is {} tokens. However, your "
                    "request has {} input tokens. Please reduce the length of the "
                    "input.",
                    model.max_model_len, prompt_len));
  }
  int max_tokens = requested.value_or(fallback.tokens.value_or(model.max_model_len - prompt_len));
  if (int64_t(prompt_len) + max_tokens > model.max_model_len) {
    context_error(
        fmt::format("This model's maximum context length is {} tokens. However, you "
                    "requested {} tokens ({} in the input, {} in the completion). "
                    "Please reduce the length of the input or the completion.",
                    model.max_model_len, int64_t(prompt_len) + max_tokens, prompt_len, max_tokens));
  }
  return max_tokens;
}

// Rejects requests whose choices, all running at once, would not fit in the KV cache.
void check_kv_capacity(const ServingContext& ctx, const std::vector<ChoiceSpec>& choices) {
  int64_t total_blocks = ctx.engine->stats().kv_blocks_total;
  if (total_blocks <= 0) return;  // the engine does not say
  int64_t needed = 0;
  for (const ChoiceSpec& c : choices) {
    int64_t tokens = int64_t(c.prompt_ids.size()) + *c.params.max_tokens;
    needed += (tokens + ctx.model.block_size - 1) / ctx.model.block_size;
  }
  if (needed > total_blocks) {
    fail_param("n",
               "The request needs {} KV-cache blocks for its {} choices (prompt + "
               "max_tokens each) but the cache holds {}: lower n or max_tokens",
               needed, choices.size(), total_blocks);
  }
}

// A token handed over by the prefiller stands for the first token of exactly one choice, whose
// output is streamed from it: no logprobs (the prefiller's are not passed on), no echo.
void check_first_token(const ServedModel& model, const GenerationRequest& request,
                       size_t num_prompts) {
  if (!request.kv_transfer || !request.kv_transfer->first_token_id) return;
  const char* param = "kv_transfer_params.first_token_id";
  if (num_prompts != 1 || request.n != 1) {
    fail_param(param, "'first_token_id' needs one prompt and n = 1, got {} prompts and n = {}",
               num_prompts, request.n);
  }
  if (request.echo) fail_param(param, "'first_token_id' cannot be combined with echo");
  if (request.params.logprobs)
    fail_param(param, "'first_token_id' cannot be combined with logprobs");
  check_token_ids(model, {*request.kv_transfer->first_token_id}, param);
}

}  // namespace

void check_token_ids(const ServedModel& model, const std::vector<int32_t>& ids, const char* param) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= model.vocab_size) {
      fail_param(param,
                 "Token id {} (at position {}) is out of vocabulary: valid ids are 0 to "
                 "{}",
                 ids[i], i, model.vocab_size - 1);
    }
  }
}

std::vector<ChoiceSpec> plan_choices(const ServingContext& ctx, std::vector<PlannedPrompt> prompts,
                                     const GenerationRequest& request, MaxTokensDefault fallback) {
  int64_t num_choices = int64_t(prompts.size()) * request.n;
  if (num_choices > kMaxChoices) {
    fail_param("n",
               "The request asks for {} choices ({} prompts x n = {}); at most {} are "
               "allowed",
               num_choices, prompts.size(), request.n, kMaxChoices);
  }
  check_first_token(ctx.model, request, prompts.size());
  std::vector<ChoiceSpec> choices;
  for (size_t p = 0; p < prompts.size(); ++p) {
    PlannedPrompt& prompt = prompts[p];
    if (prompt.ids.empty()) fail_param("prompt", "prompt cannot be empty");
    check_token_ids(ctx.model, prompt.ids, "prompt");
    SamplingParams params = request.params;
    params.max_tokens =
        checked_max_tokens(ctx.model, int(prompt.ids.size()), request.params.max_tokens, fallback);
    validate_sampling_params(params);
    for (int sample = 0; sample < request.n; ++sample) {
      ChoiceSpec spec;
      spec.index = int(p) * request.n + sample;
      spec.prompt_index = int(p);
      spec.prompt_ids = prompt.ids;
      spec.params = params;
      spec.kv_transfer = request.kv_transfer;
      if (params.seed) spec.params.seed = int64_t(uint64_t(*params.seed) + uint64_t(sample));
      if (request.echo) spec.echo_text = prompt.echo_text;
      choices.push_back(std::move(spec));
    }
  }
  check_kv_capacity(ctx, choices);
  return choices;
}

}  // namespace tandem
