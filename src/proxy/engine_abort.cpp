// send_abort_transfer: one detached POST /tandem/abort_transfer.
#include "proxy/engine_abort.h"

#include <nlohmann/json.hpp>

#include "core/logging.h"

namespace tandem {
namespace {

constexpr size_t kMaxAnswerBytes = 64 << 10;

Task<void> post_abort(net::any_io_executor executor, HttpEndpoint engine, std::string name,
                      std::string transfer_id, HeaderList headers,
                      SteadyClock::time_point deadline) {
  UpstreamCall call(executor, engine, name);
  const std::string target = "/tandem/abort_transfer";
  const std::string body = nlohmann::json{{"req_id", transfer_id}}.dump();
  try {
    co_await call.connect(deadline);
    co_await call.send(http::verb::post, target, body, headers, deadline);
    UpstreamResponse response = co_await call.read_response(deadline, kMaxAnswerBytes);
    if (response.status != 200) {
      log_warning("request {}: {} answered the abort with {}: {}", transfer_id, name,
                  response.status, response.body.substr(0, 200));
    }
  } catch (const UpstreamFailure& f) {
    log_debug("request {}: could not tell {} to abort: {}", transfer_id, name, f.what());
  }
}

}  // namespace

void send_abort_transfer(const net::any_io_executor& executor, const HttpEndpoint& engine,
                         std::string name, std::string transfer_id, HeaderList headers,
                         SteadyClock::time_point deadline) {
  net::co_spawn(executor,
                post_abort(executor, engine, std::move(name), std::move(transfer_id),
                           std::move(headers), deadline),
                net::detached);
}

}  // namespace tandem
