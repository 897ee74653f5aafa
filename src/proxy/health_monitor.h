// HealthMonitor: the proxy's heartbeat to its engines. Every health_interval it sends GET /health
// to each prefiller and decoder (one coroutine per engine); an engine that does not answer 200
// within health_timeout — dead, unreachable or hung (SIGSTOP'd: the kernel still accepts the
// connection, nothing answers) — is marked unhealthy in its BackendPool and gets no new
// requests, so clients get a prompt 503 instead of waiting out a stage timeout; the first probe
// it answers again brings it back (a restarted engine rejoins by itself). An engine whose probe
// timed out but that sent part of an answer to a request meanwhile is busy, not hung (its HTTP
// threads are all serving requests, so the probe waits behind them): it stays in service. An
// engine that has never answered (still starting beside the proxy) is not excluded: a refused
// connection rests it as before. Runs on the proxy's io_context; stops with it.
#pragma once
#include <string>

#include "proxy/async_io.h"
#include "proxy/backend_pool.h"
#include "proxy/proxy_config.h"

namespace tandem {

class HealthMonitor {
 public:
  // `config`, `prefillers` and `decoders` must outlive the io_context the probes run on.
  HealthMonitor(const ProxyConfig& config, BackendPool& prefillers, BackendPool& decoders);

  // Spawns the probe loops on `executor` (none when config.health_interval is 0).
  void start(const net::any_io_executor& executor);

 private:
  Task<void> probe_loop(BackendPool& pool, HttpEndpoint endpoint, size_t index);
  struct ProbeResult {
    std::string problem;     // "" if the engine answered 200 in time, else why not
    bool timed_out = false;  // no answer in time (a hung engine, or a busy one)
  };
  Task<ProbeResult> probe(const HttpEndpoint& endpoint, const std::string& name);

  const ProxyConfig& config_;
  BackendPool& prefillers_;
  BackendPool& decoders_;
};

}  // namespace tandem
