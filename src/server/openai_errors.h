// ApiError: an HTTP error as OpenAI reports it, {"error": {"message", "type", "param", "code"}}.
// Handlers throw it (or tandem::Error, which becomes a 400 invalid_request_error: every
// tandem::Error raised while handling a request comes from validating that request);
// anything else is a server fault and becomes a 500.
#pragma once
#include <fmt/format.h>

#include <optional>
#include <stdexcept>
#include <string>

namespace tandem {

enum class HttpStatus {
  kBadRequest = 400,
  kUnauthorized = 401,
  kNotFound = 404,
  kMethodNotAllowed = 405,
  kPayloadTooLarge = 413,
  kInternalServerError = 500,
  kBadGateway = 502,  // the proxy: an engine is unreachable, failed or aborted
  kServiceUnavailable = 503,
  kGatewayTimeout = 504,  // the proxy: an engine did not answer in time
};

class ApiError : public std::runtime_error {
 public:
  ApiError(HttpStatus status, std::string message, std::optional<std::string> param = {},
           std::optional<std::string> code = {});

  HttpStatus status() const { return status_; }
  // "invalid_request_error" for client faults (4xx), "server_error" for 5xx, as OpenAI.
  const std::string& type() const { return type_; }
  const std::optional<std::string>& param() const { return param_; }
  const std::optional<std::string>& code() const { return code_; }

  // The response body.
  [[nodiscard]] std::string to_json() const;

 private:
  HttpStatus status_;
  std::string type_;
  std::optional<std::string> param_, code_;
};

// A 400 invalid_request_error naming the offending request field.
template <typename... Args>
[[noreturn]] void fail_param(const char* param, fmt::format_string<Args...> format,
                             Args&&... args) {
  throw ApiError(HttpStatus::kBadRequest, fmt::format(format, std::forward<Args>(args)...),
                 std::string(param));
}

}  // namespace tandem
