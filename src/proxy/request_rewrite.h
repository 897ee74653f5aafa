// The two upstream bodies of one disaggregated request (the interface agreed in issue 4):
// the prefiller's — the client's body with max_tokens 1, no streaming, n 1, plus
// kv_transfer_params.disagg_spec naming the request id and the decoder's receiver — and the
// decoder's — the client's body unchanged plus kv_transfer_params.disagg_spec.req_id. A
// completion's text prompt is tokenized once: the prefiller is asked for its prompt's ids
// (vLLM's return_token_ids) and the decoder gets those ids as its prompt, so it does not tokenize
// the text again on the way to the first token (4-10 ms for a 7500-token prompt on the GPU
// machine's CPU; 1p1d on one H100: mean TTFT -3 ms,
// bench/results/ttft_prompt_ids_h100_mps_2026-11-28.json); where one plain choice allows it, the
// decoder also gets the prefiller's sampled token and streams it at once (first_token_reusable).
// JSON stays here, at the proxy's edge.
// The client's body is first checked by the engines' own request parser: the prefiller sees a
// rewritten body (max_tokens 1, no stream), so a field only the decoder would reject (max_tokens
// -1, a bad stream flag) would otherwise cost a whole prefill and transfer before the 400. What
// needs the model (token ids, prompt length) is the engines'.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "proxy/proxy_config.h"
#include "server/openai_protocol.h"  // OrderedJson

namespace tandem {

enum class ApiEndpoint { kCompletions, kChatCompletions };

const char* api_endpoint_path(ApiEndpoint endpoint);  // "/v1/completions", ...

// The client's body as a JSON object (its keys in the client's order); throws ApiError 400 when
// it is not JSON or not an object.
OrderedJson parse_client_body(const std::string& body);

// Throws ApiError (400, naming the field) for a body the engines' parser rejects, for `endpoint`:
// the parsed body (check_client_object) or the raw one (check_client_request). Parsing a 7500-token
// prompt's body takes ~0.5 ms, so the proxy parses it once.
void check_client_object(const OrderedJson& body, ApiEndpoint endpoint);
void check_client_request(const std::string& body, ApiEndpoint endpoint);

// The prefiller's body: max_tokens 1 (chat: max_completion_tokens dropped), stream false, n 1,
// no stream_options / min_tokens / best_of (they conflict with one token), and
// kv_transfer_params.disagg_spec {req_id, receiver_host, receiver_init_port: [p],
// receiver_alloc_port: [p]}; return_token_ids true where prompt_ids_reusable(client_body).
nlohmann::json make_prefill_body(const nlohmann::json& client_body, ApiEndpoint endpoint,
                                 const std::string& request_id, const DecoderEndpoint& decoder);

// Whether the decoder may take the prefiller's prompt ids for the client's prompt: a completion
// whose prompt is one string (or one list of token ids, which the prefiller answers unchanged),
// without echo (whose text would then be the ids' decoding).
bool prompt_ids_reusable(const nlohmann::json& client_body, ApiEndpoint endpoint);

// Whether the decoder may also start from the token the prefiller sampled (it streams that token
// at once instead of computing it: the client's first token skips a decoder step):
// prompt_ids_reusable, and one choice (n, best_of 1) whose first token
// nothing conditions differently on the prefiller (min_tokens, dropped there) or needs more than
// the id of (logprobs).
bool first_token_reusable(const nlohmann::json& client_body, ApiEndpoint endpoint);

// What the decoder takes over from the prefiller's answer.
struct PrefillHandover {
  // choices[0].prompt_token_ids (1..2^20 ids, each in [0, 2^31)); null when absent or malformed
  // (the decoder then tokenizes the text itself)
  nlohmann::json prompt_ids;
  std::optional<int32_t> first_token_id;  // choices[0].token_ids, one id, given prompt_ids
};

// Parses the prefiller's answer once: the prompt ids, and the first token where `first_token`.
PrefillHandover handover_of(const std::string& prefill_answer, bool first_token);

// The decoder's body: the client's, plus kv_transfer_params.disagg_spec.req_id, with the
// handover's prompt ids (unless null) as the prompt and its first token (if any) as
// kv_transfer_params.first_token_id.
nlohmann::json make_decode_body(const nlohmann::json& client_body, const std::string& request_id,
                                PrefillHandover handover = {});

// Whether the client asked for a stream ("stream": true).
bool wants_stream(const nlohmann::json& client_body);

// A fresh id for one request: "cmpl-" and 32 random hex digits.
std::string new_request_id();

}  // namespace tandem
