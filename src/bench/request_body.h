// The JSON body of one benchmark request, as vLLM's openai / openai-chat request functions build
// it: streamed, with stream_options.include_usage so the server reports token counts.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "bench/random_dataset.h"

namespace tandem::bench {

enum class ApiKind { kCompletions, kChatCompletions };

// The API an --endpoint speaks: ".../chat/completions" -> chat, other ".../completions" ->
// completions; anything else throws tandem::Error naming the endpoint.
ApiKind api_kind_for_endpoint(std::string_view endpoint);

struct RequestBodyOptions {
  std::string model;                                     // the "model" field
  bool ignore_eos = false;                               // sent only when true, as vLLM does
  nlohmann::json extra_body = nlohmann::json::object();  // merged last (sampling parameters)
};

std::string build_request_body(ApiKind api, const SampleRequest& request,
                               const RequestBodyOptions& options);

}  // namespace tandem::bench
