// ApiError: the OpenAI error body.
#include "server/openai_errors.h"

#include <nlohmann/json.hpp>

namespace tandem {

ApiError::ApiError(HttpStatus status, std::string message, std::optional<std::string> param,
                   std::optional<std::string> code)
    : std::runtime_error(std::move(message)),
      status_(status),
      type_(int(status) >= 500 ? "server_error" : "invalid_request_error"),
      param_(std::move(param)),
      code_(std::move(code)) {}

std::string ApiError::to_json() const {
  nlohmann::json error = {{"message", what()},
                          {"type", type_},
                          {"param", nullptr},
                          {"code", nullptr}};
  if (param_) error["param"] = *param_;
  if (code_) error["code"] = *code_;
  return nlohmann::json{{"error", error}}.dump(-1, ' ', false,
                                               nlohmann::json::error_handler_t::replace);
}

}  // namespace tandem
