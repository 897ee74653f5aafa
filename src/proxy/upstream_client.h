// UpstreamCall: one HTTP/1.1 exchange with an engine over its own TCP connection (closed after:
// a closed connection is how an engine learns the client left). Every step has a deadline; a
// failure is an UpstreamFailure saying whether the engine was unreachable, too slow, broke
// the exchange, or was cut off by abort() (the client left). The answer is read whole
// (read_response) or as it arrives (read_header, then read_body_some), for SSE pass-through.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "proxy/async_io.h"
#include "proxy/proxy_config.h"

namespace tandem {

enum class UpstreamFailureKind { kUnreachable, kTimeout, kBroken, kAborted };

class UpstreamFailure : public Error {
 public:
  UpstreamFailure(UpstreamFailureKind kind, const std::string& message)
      : Error(message), kind_(kind) {}
  UpstreamFailureKind kind() const { return kind_; }

 private:
  UpstreamFailureKind kind_;
};

struct UpstreamResponse {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class UpstreamCall {
 public:
  // `name` names the engine in messages, e.g. "prefiller localhost:7100".
  UpstreamCall(const net::any_io_executor& executor, HttpEndpoint endpoint, std::string name);

  Task<void> connect(SteadyClock::time_point deadline);
  Task<void> send(http::verb method, const std::string& target, const std::string& body,
                  const HeaderList& headers, SteadyClock::time_point deadline);
  // The whole answer (at most max_body bytes).
  Task<UpstreamResponse> read_response(SteadyClock::time_point deadline, size_t max_body);
  // The status and content type; the body follows through read_body_some.
  Task<UpstreamResponse> read_header(SteadyClock::time_point deadline);
  // The next piece of the body as it arrives; nullopt once the body is complete.
  Task<std::optional<std::string>> read_body_some(SteadyClock::time_point deadline);

  // Closes the connection: the engine sees it close; pending and later steps throw kAborted.
  void abort();
  const std::string& name() const { return name_; }

 private:
  [[noreturn]] void fail(const boost::system::error_code& ec, const char* step) const;

  HttpEndpoint endpoint_;
  std::string name_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::buffer_body>> parser_;  // between read_header and the end
  bool aborted_ = false;
};

}  // namespace tandem
