// ProxyServer: `tandem proxy`'s HTTP front (Boost.Beast over C++20 coroutines on a few I/O
// threads, one strand per client connection, so 1,000 concurrent streams cost sockets, not
// threads) and the UCX notification listener. Routes /v1/completions and
// /v1/chat/completions through DisaggFlow, serves /health, /metrics and /v1/models (passed
// through to a decoder), probes every engine's /health (HealthMonitor), and prints the
// reference's TTFT block every stats interval.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include "proxy/async_io.h"
#include "proxy/backend_pool.h"
#include "proxy/health_monitor.h"
#include "proxy/proxy_config.h"
#include "proxy/proxy_metrics.h"
#include "proxy/transfer_notifications.h"
#include "proxy/ttft_stats.h"
#include "transfer/transport.h"

namespace tandem {

class ProxyServer {
 public:
  using StatsSink = std::function<void(const std::string&)>;

  // `print_stats` receives each TTFT block (default: stdout).
  explicit ProxyServer(ProxyConfig config, StatsSink print_stats = {});
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Binds the HTTP port and the notification port and starts serving; throws tandem::Error
  // naming the port when one is taken.
  void start();
  // Stops accepting, ends open connections and joins every thread. Idempotent.
  void stop();

  uint16_t port() const { return port_; }
  uint16_t notify_port() const { return listener_ ? listener_->port() : 0; }
  const ProxyConfig& config() const { return config_; }
  NotificationHub& hub() { return hub_; }

 private:
  Task<void> accept_loop();
  Task<void> session(net::ip::tcp::socket socket);
  Task<void> stats_loop();
  // Serves one request; returns whether the connection may serve another.
  Task<bool> dispatch(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                      http::request<http::string_body>& request);
  // The client sent "Authorization: Bearer <client_api_key>".
  bool authorized(const http::request<http::string_body>& request) const;
  Task<bool> pass_through_models(beast::tcp_stream& stream, bool keep_alive);

  // Declared before ioc_: coroutine frames still pending when it is destroyed refer to these.
  ProxyConfig config_;
  StatsSink print_stats_;
  NotificationHub hub_;  // emptied by stop() before ioc_ goes (its callbacks hold strands)
  ProxyMetrics metrics_;
  TtftStats stats_;
  BackendPool prefillers_;
  BackendPool decoders_;
  HealthMonitor health_;  // probes prefillers_ and decoders_
  net::io_context ioc_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<NotificationListener> listener_;  // uses transport_ and hub_
  net::ip::tcp::acceptor acceptor_;
  net::steady_timer stats_timer_;
  uint16_t port_ = 0;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace tandem
