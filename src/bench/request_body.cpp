// Request bodies for /v1/completions and /v1/chat/completions.
#include "bench/request_body.h"

#include "core/error.h"

namespace tandem::bench {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

ApiKind api_kind_for_endpoint(std::string_view endpoint) {
  if (ends_with(endpoint, "chat/completions")) return ApiKind::kChatCompletions;
  if (ends_with(endpoint, "completions")) return ApiKind::kCompletions;
  fail("--endpoint '{}' must end with /completions or /chat/completions", endpoint);
}

std::string build_request_body(ApiKind api, const SampleRequest& request,
                               const RequestBodyOptions& options) {
  nlohmann::ordered_json body;
  body["model"] = options.model;
  if (api == ApiKind::kCompletions) {
    body["prompt"] = request.prompt;
    body["repetition_penalty"] = 1.0;
    body["max_tokens"] = request.expected_output_len;
    body["logprobs"] = nullptr;
  } else {
    body["messages"] = {
        {{"role", "user"}, {"content", {{{"type", "text"}, {"text", request.prompt}}}}}};
    body["max_completion_tokens"] = request.expected_output_len;
  }
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  if (options.ignore_eos) body["ignore_eos"] = true;
  for (const auto& [key, value] : options.extra_body.items()) body[key] = value;
  return body.dump();
}

}  // namespace tandem::bench
