// The two upstream bodies of one disaggregated request (the interface agreed in issue 4):
// the prefiller's — the client's body with max_tokens 1, no streaming, n 1, plus
// kv_transfer_params.disagg_spec naming the request id and the decoder's receiver — and the
// decoder's — the client's body unchanged plus kv_transfer_params.disagg_spec.req_id. JSON stays
// here, at the proxy's edge. The client's body is first checked by the engines' own request
// parser: the prefiller sees a rewritten body (max_tokens 1, no stream), so a field only the
// decoder would reject (max_tokens -1, a bad stream flag) would otherwise cost a whole prefill
// and transfer before the 400. What needs the model (token ids, prompt length) is the engines'.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "proxy/proxy_config.h"

namespace tandem {

enum class ApiEndpoint { kCompletions, kChatCompletions };

const char* api_endpoint_path(ApiEndpoint endpoint);  // "/v1/completions", ...

// The client's body as a JSON object; throws ApiError 400 when it is not JSON or not an object.
nlohmann::json parse_client_body(const std::string& body);

// Throws ApiError (400, naming the field) for a body the engines' parser rejects, for `endpoint`.
void check_client_request(const std::string& body, ApiEndpoint endpoint);

// The prefiller's body: max_tokens 1 (chat: max_completion_tokens dropped), stream false, n 1,
// no stream_options / min_tokens / best_of (they conflict with one token), and
// kv_transfer_params.disagg_spec {req_id, receiver_host, receiver_init_port: [p],
// receiver_alloc_port: [p]}.
nlohmann::json make_prefill_body(const nlohmann::json& client_body, ApiEndpoint endpoint,
                                 const std::string& request_id, const DecoderEndpoint& decoder);

// The decoder's body: the client's, plus kv_transfer_params.disagg_spec.req_id.
nlohmann::json make_decode_body(const nlohmann::json& client_body, const std::string& request_id);

// Whether the client asked for a stream ("stream": true).
bool wants_stream(const nlohmann::json& client_body);

// A fresh id for one request: "cmpl-" and 32 random hex digits.
std::string new_request_id();

}  // namespace tandem
