// Turning a parsed generation request into engine work: the checks that need the model (token
// ids in the vocabulary, prompt and max_tokens within the context, n x length within the KV
// cache) and the fan-out of prompts x n into ChoiceSpecs (sample i of a seeded request gets
// seed + i, as vLLM does). Every failure is an ApiError 400 in OpenAI's/vLLM's words.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/generation.h"
#include "server/openai_protocol.h"
#include "server/serving_context.h"

namespace tandem {

// One tokenized prompt.
struct PlannedPrompt {
  std::vector<int32_t> ids;  // (prompt_len)
  std::string echo_text;     // prepended to its choices' text when the request echoes
};

// Default output length: a fixed count (completions: 16, as OpenAI) or, when unset, the rest of
// the context (chat).
struct MaxTokensDefault {
  std::optional<int> tokens;
};

// Checks every prompt against the model and returns prompts.size() * request.n choices, indexed
// prompt-major (choice index = prompt_index * n + sample).
std::vector<ChoiceSpec> plan_choices(const ServingContext& ctx,
                                     std::vector<PlannedPrompt> prompts,
                                     const GenerationRequest& request, MaxTokensDefault fallback);

// ApiError 400 unless every id is in [0, vocab_size); `param` names the request field.
void check_token_ids(const ServedModel& model, const std::vector<int32_t>& ids,
                     const char* param);

}  // namespace tandem
