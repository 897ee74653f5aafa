// The OpenAI/vLLM response bodies: completions and chat completions, whole and as stream
// chunks, with each endpoint's logprobs shape and usage. Pure functions from native results to
// JSON; the handlers decide what to send when.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/generation.h"

namespace tandem {

using OrderedJson = nlohmann::ordered_json;

// The fields every response and chunk starts with.
struct ResponseHeader {
  std::string id;       // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;    // the served model name the request used
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// A whole choice, accumulated from its deltas (non-streaming responses).
struct ChoiceResult {
  int index = 0;
  std::string text;
  std::vector<DecodedLogprob> logprobs;  // one per generated token when asked
  std::vector<int32_t> token_ids;        // the generated tokens' ids
  FinishReason finish = FinishReason::kNone;
  StopReason stop_reason;

  void add(const ChoiceDelta& delta);
};

OrderedJson usage_json(const Usage& usage);
// null, the stop token id, or the stop string (vLLM's stop_reason).
OrderedJson stop_reason_json(const StopReason& reason);

// {"tokens", "token_logprobs", "top_logprobs", "text_offset"} (legacy completions);
// `text_offset` counts code points from `initial_offset`; top_logprobs maps the sampled token
// and up to `num_top` alternatives to their logprob.
OrderedJson completion_logprobs_json(const std::vector<DecodedLogprob>& logprobs, int num_top,
                                     int64_t initial_offset);
// {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]} (chat).
OrderedJson chat_logprobs_json(const std::vector<DecodedLogprob>& logprobs);

// Whole responses. `logprobs_top` < 0: the request did not ask for logprobs (null).
// `prompt_token_ids` (return_token_ids; else null): choice i's prompt ids, at index i; each
// choice then also carries its generated "token_ids".
OrderedJson completion_response(const ResponseHeader& header,
                                const std::vector<ChoiceResult>& choices, int logprobs_top,
                                const Usage& usage,
                                const std::vector<std::vector<int32_t>>* prompt_token_ids = nullptr);
OrderedJson chat_response(const ResponseHeader& header, const std::vector<ChoiceResult>& choices,
                          bool with_logprobs, const Usage& usage);

// Stream chunks. With include_usage every chunk carries "usage": null, as OpenAI sends them.
// With return_token_ids a completion chunk carries its "token_ids", and `prompt_token_ids`
// (non-null for a choice's first chunk) its prompt's.
OrderedJson completion_chunk(const ResponseHeader& header, const ChoiceDelta& delta,
                             int logprobs_top, int64_t text_offset, bool include_usage,
                             bool return_token_ids = false,
                             const std::vector<int32_t>* prompt_token_ids = nullptr);
OrderedJson chat_role_chunk(const ResponseHeader& header, int index, bool include_usage);
OrderedJson chat_chunk(const ResponseHeader& header, const ChoiceDelta& delta, bool with_logprobs,
                       bool include_usage);
// The final chunk of a stream with stream_options.include_usage: no choices, the usage.
OrderedJson usage_chunk(const ResponseHeader& header, const char* object, const Usage& usage);

// The number of Unicode code points in UTF-8 text (what text_offset counts).
int64_t count_code_points(const std::string& text);

}  // namespace tandem
