// StreamingClient: sends one benchmark request and times its server-sent-event stream the way
// vLLM's request functions do: TTFT at the first chunk whose "choices" is non-empty, an ITL for
// every later such chunk, token counts from the final "usage" chunk. Built on Boost.Beast
// coroutines, so one thread drives thousands of concurrent streams and each chunk is timed when
// the bytes arrive, not when a thread gets scheduled.
#pragma once
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
#include <boost/asio/awaitable.hpp>
// clang-format on
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "bench/http_url.h"
#include "bench/request_body.h"
#include "bench/request_output.h"

namespace tandem::bench {

using Clock = std::chrono::steady_clock;
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class StreamingClient {
 public:
  // `endpoints`: api_url's host, resolved once up front. `headers` go on every request.
  StreamingClient(HttpUrl api_url, boost::asio::ip::tcp::resolver::results_type endpoints,
                  ApiKind api, HttpHeaders headers);

  // POSTs `body` and reads the streamed answer into `out` (start/end times relative to
  // `origin`). Never throws: connection, HTTP and stream errors set out.success = false and
  // out.error.
  boost::asio::awaitable<void> send(const std::string& body, Clock::time_point origin,
                                    RequestOutput& out) const;

 private:
  HttpUrl url_;
  boost::asio::ip::tcp::resolver::results_type endpoints_;
  ApiKind api_;
  HttpHeaders headers_;
};

}  // namespace tandem::bench
