// The OpenAI/vLLM request bodies, parsed into native structs at the HTTP edge: completions,
// chat completions, tokenize and detokenize. Parsing checks every field's JSON type and range
// and throws ApiError (400, naming the field) with OpenAI's/vLLM's wording; what needs the model
// (prompt length, token id range) is checked later by the handlers. Unknown fields are ignored,
// as by vLLM (by default) and OpenAI, in the body and in messages; a chat role outside OpenAI's
// set (plus "ipython") is a 400; bodies nested deeper than kMaxJsonNesting are a 400; fields Tandem cannot honour (logit_bias, response_format json, suffix, best_of
// != n) are rejected rather than silently dropped.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/sampling_params.h"
#include "transfer/kv_transfer_params.h"

namespace tandem {

// Request bodies keep their key order (chat templates render tools/messages with tojson).
using OrderedJson = nlohmann::ordered_json;

// The most choices one request may ask for (prompts x n).
inline constexpr int kMaxChoices = 128;

// One completion prompt: text to tokenize, or token ids used as they are.
using PromptInput = std::variant<std::string, std::vector<int32_t>>;

// Fields shared by /v1/completions and /v1/chat/completions.
struct GenerationRequest {
  std::optional<std::string> model;  // unset: the served model
  SamplingParams params;             // max_tokens unset: the endpoint's default
  int n = 1;                         // samples per prompt
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool skip_special_tokens = true;
  bool echo = false;
  // vLLM's return_token_ids (completions): each choice also carries prompt_token_ids and the
  // generated token_ids (streamed: prompt_token_ids in a choice's first chunk, token_ids in each).
  bool return_token_ids = false;
  std::optional<bool> add_special_tokens;       // unset: the endpoint's default
  std::string user;                             // recorded in logs only
  std::optional<KvTransferParams> kv_transfer;  // kv_transfer_params (disaggregated prefill)
};

struct CompletionRequest {
  GenerationRequest common;
  std::vector<PromptInput> prompts;  // (num_prompts) >= 1; each becomes n choices
};

struct ChatCompletionRequest {
  GenerationRequest common;
  OrderedJson messages;         // array of {role, content (string or null), ...}; text parts
                                // of list contents are joined into one string
  OrderedJson tools;            // array, or null when absent
  OrderedJson template_kwargs;  // object: chat_template_kwargs (extra template variables)
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  bool logprobs = false;  // then params.logprobs = top_logprobs (default 0)
};

struct TokenizeRequest {
  std::optional<std::string> model;
  std::optional<std::string> prompt;  // either prompt ...
  OrderedJson messages;               // ... or messages (null when prompt is used)
  OrderedJson tools;
  OrderedJson template_kwargs;
  bool add_special_tokens = true;  // default: true for prompt, false for messages
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  bool return_token_strs = false;
};

struct DetokenizeRequest {
  std::optional<std::string> model;
  std::vector<int32_t> tokens;
};

// Parses a request body (the raw HTTP body); throws ApiError 400 for malformed JSON, a body that
// is not an object, wrong types and out-of-range values. `defaults` are the sampling values the
// request starts from (the model's generation_config.json ones, as vLLM applies them).
CompletionRequest parse_completion_request(std::string_view body,
                                           const SamplingParams& defaults = {});
ChatCompletionRequest parse_chat_completion_request(std::string_view body,
                                                    const SamplingParams& defaults = {});
// The same from a body already parsed (the proxy checks what it has parsed for its rewrites).
CompletionRequest parse_completion_object(const OrderedJson& body,
                                          const SamplingParams& defaults = {});
ChatCompletionRequest parse_chat_completion_object(const OrderedJson& body,
                                                   const SamplingParams& defaults = {});
TokenizeRequest parse_tokenize_request(std::string_view body);
DetokenizeRequest parse_detokenize_request(std::string_view body);

// Runs params.validate(), turning its tandem::Error into ApiError 400 with the field as `param`.
void validate_sampling_params(const SamplingParams& params);

// The JSON object of a request body; ApiError 400 if it is not valid JSON or not an object.
OrderedJson parse_json_object(std::string_view body);

// Compact JSON text; invalid UTF-8 in strings becomes U+FFFD rather than an exception.
std::string dump_json(const OrderedJson& json);
std::string dump_json(const nlohmann::json& json);

}  // namespace tandem
