// HealthMonitor: periodic GET /health probes and the healthy/unhealthy verdicts they give.
#include "proxy/health_monitor.h"

#include <boost/asio/this_coro.hpp>

#include "core/logging.h"
#include "proxy/upstream_client.h"

namespace tandem {
namespace {

constexpr size_t kMaxHealthBody = 64 << 10;

}  // namespace

HealthMonitor::HealthMonitor(const ProxyConfig& config, BackendPool& prefillers,
                             BackendPool& decoders)
    : config_(config), prefillers_(prefillers), decoders_(decoders) {}

void HealthMonitor::start(const net::any_io_executor& executor) {
  if (config_.health_interval.count() == 0) return;
  for (size_t i = 0; i < config_.prefillers.size(); ++i) {
    net::co_spawn(executor, probe_loop(prefillers_, config_.prefillers[i], i), net::detached);
  }
  for (size_t i = 0; i < config_.decoders.size(); ++i) {
    net::co_spawn(executor, probe_loop(decoders_, config_.decoders[i].http, i), net::detached);
  }
}

Task<void> HealthMonitor::probe_loop(BackendPool& pool, HttpEndpoint endpoint, size_t index) {
  net::any_io_executor executor = co_await net::this_coro::executor;
  net::steady_timer timer(executor);
  const std::string name = pool.name(index);
  bool answered_once = false;
  bool busy = false;  // the last probe timed out while the engine answered requests
  while (true) {
    SteadyClock::time_point started = SteadyClock::now();
    ProbeResult result = co_await probe(endpoint, name);
    std::string problem = std::move(result.problem);
    const bool was_busy = busy;
    busy = result.timed_out && pool.last_answer(index) >= started;
    if (busy) {
      if (!was_busy) {
        log_info("proxy: {} did not answer its health probe in time but answers requests (busy); "
                 "it stays in service",
                 name);
      }
      problem.clear();
    }
    answered_once = answered_once || problem.empty();
    // An engine still starting (never answered yet) is left to the refused-connection rest, so
    // that a proxy started beside its engines does not turn clients away until its next probe.
    EngineHealth health = problem.empty()  ? EngineHealth::kHealthy
                          : answered_once ? EngineHealth::kUnhealthy
                                          : EngineHealth::kStarting;
    EngineHealth before = pool.health(index);
    if (pool.set_health(index, health)) {
      if (health == EngineHealth::kHealthy && before == EngineHealth::kUnhealthy) {
        log_info("proxy: {} answers its health probe again; it gets requests again", name);
      } else if (health == EngineHealth::kUnhealthy) {
        log_warning("proxy: {} failed its health probe ({}); no new requests until it answers",
                    name, problem);
      }
    }
    timer.expires_at(started + config_.health_interval);
    boost::system::error_code ec;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;  // the io_context is stopping
  }
}

Task<HealthMonitor::ProbeResult> HealthMonitor::probe(const HttpEndpoint& endpoint,
                                                      const std::string& name) {
  net::any_io_executor executor = co_await net::this_coro::executor;
  UpstreamCall call(executor, endpoint, name);
  SteadyClock::time_point deadline = SteadyClock::now() + config_.health_timeout;
  try {
    co_await call.connect(deadline);
    HeaderList headers;
    if (config_.api_key) headers.emplace_back("Authorization", "Bearer " + *config_.api_key);
    const std::string target = "/health";
    const std::string no_body;
    co_await call.send(http::verb::get, target, no_body, headers, deadline);
    UpstreamResponse response = co_await call.read_response(deadline, kMaxHealthBody);
    if (response.status != 200) {
      co_return ProbeResult{fmt::format("/health answered {}", response.status)};
    }
  } catch (const UpstreamFailure& f) {
    co_return ProbeResult{f.what(), f.kind() == UpstreamFailureKind::kTimeout};
  }
  co_return ProbeResult{};
}

}  // namespace tandem
