// Prefill and decode bodies of a disaggregated request.
#include "proxy/request_rewrite.h"

#include <algorithm>
#include <cstdint>
#include <random>

#include "core/json_nesting.h"
#include "server/openai_errors.h"
#include "server/openai_protocol.h"

namespace tandem {

const char* api_endpoint_path(ApiEndpoint endpoint) {
  return endpoint == ApiEndpoint::kCompletions ? "/v1/completions" : "/v1/chat/completions";
}

OrderedJson parse_client_body(const std::string& body) {
  if (json_nesting_depth(body) > kMaxJsonNesting) {
    throw ApiError(HttpStatus::kBadRequest,
                   fmt::format("the request body nests objects and arrays more than {} levels deep",
                               kMaxJsonNesting));
  }
  OrderedJson parsed = OrderedJson::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    throw ApiError(HttpStatus::kBadRequest, "the request body is not valid JSON");
  }
  if (!parsed.is_object()) {
    throw ApiError(HttpStatus::kBadRequest,
                   fmt::format("the request body must be a JSON object, not {}", parsed.type_name()));
  }
  return parsed;
}

void check_client_object(const OrderedJson& body, ApiEndpoint endpoint) {
  if (endpoint == ApiEndpoint::kCompletions) {
    (void)parse_completion_object(body);
  } else {
    (void)parse_chat_completion_object(body);
  }
}

void check_client_request(const std::string& body, ApiEndpoint endpoint) {
  check_client_object(parse_json_object(body), endpoint);
}

nlohmann::json make_prefill_body(const nlohmann::json& client_body, ApiEndpoint endpoint,
                                 const std::string& request_id, const DecoderEndpoint& decoder) {
  nlohmann::json body = client_body;
  body["max_tokens"] = 1;
  if (endpoint == ApiEndpoint::kChatCompletions) body.erase("max_completion_tokens");
  body["stream"] = false;
  body["n"] = 1;
  body.erase("stream_options");
  body.erase("min_tokens");
  body.erase("best_of");
  if (prompt_ids_reusable(client_body, endpoint)) body["return_token_ids"] = true;
  body["kv_transfer_params"] = {
      {"disagg_spec",
       {{"req_id", request_id},
        {"receiver_host", decoder.http.host},
        {"receiver_init_port", nlohmann::json::array({decoder.init_port})},
        {"receiver_alloc_port", nlohmann::json::array({decoder.alloc_port})}}}};
  return body;
}

bool prompt_ids_reusable(const nlohmann::json& client_body, ApiEndpoint endpoint) {
  if (endpoint != ApiEndpoint::kCompletions) return false;
  auto prompt = client_body.find("prompt");
  auto echo = client_body.find("echo");
  if (prompt == client_body.end()) return false;
  // One prompt: a string, or one list of token ids (not a list of prompts).
  const bool one_prompt = prompt->is_string() ||
                          (prompt->is_array() && !prompt->empty() &&
                           std::all_of(prompt->begin(), prompt->end(), [](const nlohmann::json& x) {
                             return x.is_number_integer();
                           }));
  return one_prompt && (echo == client_body.end() || !echo->is_boolean() || !echo->get<bool>());
}

bool first_token_reusable(const nlohmann::json& client_body, ApiEndpoint endpoint) {
  if (!prompt_ids_reusable(client_body, endpoint)) return false;
  auto absent_or = [&](const char* key, int64_t value) {
    auto it = client_body.find(key);
    return it == client_body.end() || it->is_null() ||
           (it->is_number_integer() && it->get<int64_t>() == value);
  };
  auto logprobs = client_body.find("logprobs");
  return absent_or("n", 1) && absent_or("best_of", 1) && absent_or("min_tokens", 0) &&
         (logprobs == client_body.end() || logprobs->is_null());
}

namespace {

bool is_token_id(const nlohmann::json& id) {
  return id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() <= INT32_MAX;
}

// Moved out of the parsed answer: a 7500-id array copied costs as much as parsing it anew.
nlohmann::json prompt_ids_in(nlohmann::json& choice) {
  constexpr size_t kMaxIds = size_t(1) << 20;
  auto ids = choice.find("prompt_token_ids");
  if (ids == choice.end() || !ids->is_array() || ids->empty() || ids->size() > kMaxIds ||
      !std::all_of(ids->begin(), ids->end(), is_token_id)) {
    return nullptr;
  }
  return std::move(*ids);
}

std::optional<int32_t> first_token_in(const nlohmann::json& choice) {
  auto ids = choice.find("token_ids");
  if (ids == choice.end() || !ids->is_array() || ids->size() != 1 || !is_token_id((*ids)[0])) {
    return std::nullopt;
  }
  return int32_t((*ids)[0].get<int64_t>());
}

}  // namespace

PrefillHandover handover_of(const std::string& prefill_answer, bool first_token) {
  nlohmann::json answer = nlohmann::json::parse(prefill_answer, nullptr, false);
  if (!answer.is_object()) return {};
  auto choices = answer.find("choices");
  if (choices == answer.end() || !choices->is_array() || choices->empty() ||
      !(*choices)[0].is_object()) {
    return {};
  }
  PrefillHandover handover;
  handover.prompt_ids = prompt_ids_in((*choices)[0]);
  if (first_token && !handover.prompt_ids.is_null()) {
    handover.first_token_id = first_token_in((*choices)[0]);
  }
  return handover;
}

nlohmann::json make_decode_body(const nlohmann::json& client_body, const std::string& request_id,
                                PrefillHandover handover) {
  nlohmann::json body = client_body;
  if (!handover.prompt_ids.is_null()) body["prompt"] = std::move(handover.prompt_ids);
  body["kv_transfer_params"] = {{"disagg_spec", {{"req_id", request_id}}}};
  if (handover.first_token_id)
    body["kv_transfer_params"]["first_token_id"] = *handover.first_token_id;
  return body;
}

bool wants_stream(const nlohmann::json& client_body) {
  auto it = client_body.find("stream");
  return it != client_body.end() && it->is_boolean() && it->get<bool>();
}

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("cmpl-{:016x}{:016x}", rng(), rng());
}

}  // namespace tandem
