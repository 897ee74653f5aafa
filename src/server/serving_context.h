// ServingContext: what every OpenAI handler shares: the engine, the tokenizer, the chat
// template, the served model's limits and names, and the metrics. Plus the small helpers all
// handlers use: model-name resolution (404 for an unknown name) and response ids.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampling_params.h"
#include "server/engine_client.h"
#include "server/server_metrics.h"
#include "tokenizer/tokenizer.h"

namespace tandem {

class ChatPromptRenderer;

struct ServedModel {
  std::vector<std::string> names;     // --served-model-name values (>= 1); names[0] is reported
  std::string root;                   // the MODEL argument, as given
  int max_model_len = 0;              // prompt + output tokens per sequence
  int vocab_size = 0;                 // valid token ids are [0, vocab_size)
  int block_size = 16;                // tokens per KV block (for the n x length capacity check)
  std::vector<int32_t> eos_token_ids; // the model's (generation_config.json wins)
  SamplingParams default_params;      // generation_config.json's sampling defaults
  int64_t created = 0;                // unix seconds the server started (/v1/models)
};

struct ServingContext {
  EngineClient* engine = nullptr;
  const Tokenizer* tokenizer = nullptr;
  const ChatPromptRenderer* chat = nullptr;  // nullptr: no chat template, chat requests fail
  ServedModel model;
  ServerMetrics* metrics = nullptr;
};

// The served name a request's `model` refers to: names[0] when unset; ApiError 404
// (code model_not_found) when it is not one of the served names.
const std::string& resolve_model_name(const ServedModel& model,
                                      const std::optional<std::string>& requested);

// "<prefix>-<32 random hex digits>", e.g. "cmpl-3f0c...".
std::string new_request_id(const char* prefix);

// Seconds since the Unix epoch (the `created` field).
int64_t unix_time_now();

}  // namespace tandem
