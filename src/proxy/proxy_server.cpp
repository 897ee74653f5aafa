// ProxyServer: the accept loop, one coroutine per client connection (HTTP/1.1 keep-alive), the
// small endpoints, and the periodic TTFT block.
#include "proxy/proxy_server.h"

#include <cstdio>
#include <cstdlib>

#include "core/constant_time.h"
#include "core/logging.h"
#include "proxy/client_watch.h"
#include "proxy/client_writer.h"
#include "proxy/disagg_flow.h"
#include "transfer/ucx_transport.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;
using tcp = net::ip::tcp;

constexpr auto kIdleTimeout = 120s;    // a keep-alive connection with no request
constexpr auto kWriteTimeout = 60s;    // a client that stops reading
constexpr size_t kMaxHeaderBytes = 64 << 10;

std::vector<std::string> backend_names(const ProxyConfig& c, bool prefill) {
  std::vector<std::string> names;
  if (prefill) {
    for (const auto& e : c.prefillers) names.push_back(fmt::format("prefiller {}:{}", e.host, e.port));
  } else {
    for (const auto& d : c.decoders) names.push_back(fmt::format("decoder {}:{}", d.http.host, d.http.port));
  }
  return names;
}

std::string target_path(std::string_view target) {
  return std::string(target.substr(0, target.find('?')));
}

}  // namespace

ProxyServer::ProxyServer(ProxyConfig config, StatsSink print_stats)
    : config_(std::move(config)),
      print_stats_(std::move(print_stats)),
      hub_(config_.transfer_timeout * 2),
      prefillers_(backend_names(config_, true), config_.routing, config_.backend_retry),
      decoders_(backend_names(config_, false), config_.routing, config_.backend_retry),
      health_(config_, prefillers_, decoders_),
      ioc_(config_.threads),
      acceptor_(ioc_),
      stats_timer_(ioc_) {
  if (!print_stats_) {
    print_stats_ = [](const std::string& block) {
      std::fputs(block.c_str(), stdout);
      std::fflush(stdout);
    };
  }
}

ProxyServer::~ProxyServer() { stop(); }

void ProxyServer::start() {
  TANDEM_CHECK(threads_.empty() && !stopped_, "ProxyServer::start called twice");
  // A restarted proxy listens again on the notification port its prefillers just left (their
  // sockets may linger in TIME_WAIT); the environment may still say otherwise.
  setenv("UCX_CM_REUSEADDR", "y", /*overwrite=*/0);
  transport_ = make_ucx_transport();
  // Only the prefillers (and this host) may send notifications.
  std::vector<std::string> prefiller_hosts;
  for (const HttpEndpoint& p : config_.prefillers) prefiller_hosts.push_back(p.host);
  PeerAllowlist notifiers(default_allowed_peer_hosts(prefiller_hosts), "--prefiller-host");
  try {
    listener_ = std::make_unique<NotificationListener>(*transport_, config_.notify_host,
                                                       config_.notify_port, hub_, notifiers);
  } catch (const std::exception& e) {
    fail("--proxy-host/--proxy-port {}:{}: cannot listen for KV-transfer notifications: {}",
         config_.notify_host, config_.notify_port, e.what());
  }
  boost::system::error_code ec;
  tcp::resolver resolver(ioc_);
  auto endpoints = resolver.resolve(config_.host, std::to_string(config_.port),
                                    tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) fail("--host {}: cannot resolve: {}", config_.host, ec.message());
  // IPv4 first, as the UCX listener resolves: "localhost" must serve 127.0.0.1 clients.
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  for (const auto& entry : endpoints) {
    if (entry.endpoint().address().is_v4()) {
      endpoint = entry.endpoint();
      break;
    }
  }
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("--host/--port {}:{}: cannot listen: {}", config_.host, config_.port, ec.message());
  port_ = acceptor_.local_endpoint().port();
  net::co_spawn(ioc_, accept_loop(), net::detached);
  net::co_spawn(ioc_, stats_loop(), net::detached);
  health_.start(net::make_strand(ioc_));
  for (int i = 0; i < config_.threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

void ProxyServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  listener_.reset();
  hub_.clear();
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

Task<void> ProxyServer::accept_loop() {
  while (true) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(
        net::make_strand(ioc_), net::redirect_error(net::use_awaitable, ec));
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {
      log_warning("proxy: accept failed: {}", ec.message());
      continue;
    }
    net::any_io_executor executor = socket.get_executor();
    net::co_spawn(executor, session(std::move(socket)), net::detached);
  }
}

Task<void> ProxyServer::stats_loop() {
  while (true) {
    stats_timer_.expires_after(config_.stats_interval);
    boost::system::error_code ec;
    co_await stats_timer_.async_wait(net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    if (auto block = stats_.take_report()) print_stats_(*block);
  }
}

Task<void> ProxyServer::session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  try {
    while (true) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeaderBytes);
      parser.body_limit(config_.max_body_bytes);
      boost::system::error_code ec;
      stream.expires_after(kIdleTimeout);
      co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        ClientWriter writer(stream, kWriteTimeout);
        ApiError error(HttpStatus::kPayloadTooLarge,
                       fmt::format("the request is larger than {} bytes", config_.max_body_bytes));
        co_await writer.write_error(error, /*keep_alive=*/false);
        break;
      }
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == net::error::connection_reset || ec == net::error::eof) {
        break;
      }
      if (ec) {
        ClientWriter writer(stream, kWriteTimeout);
        ApiError error(HttpStatus::kBadRequest, fmt::format("bad HTTP request: {}", ec.message()));
        co_await writer.write_error(error, /*keep_alive=*/false);
        break;
      }
      http::request<http::string_body> request = parser.release();
      if (!co_await dispatch(stream, buffer, request)) break;
    }
  } catch (const std::exception& e) {
    log_debug("proxy: connection ended: {}", e.what());
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
}

Task<bool> ProxyServer::dispatch(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                 http::request<http::string_body>& request) {
  const std::string path = target_path(request.target());
  const bool keep_alive = request.keep_alive();
  const bool is_get = request.method() == http::verb::get;
  const bool is_post = request.method() == http::verb::post;
  ClientWriter writer(stream, kWriteTimeout);
  if (path == "/health" && is_get) {
    // (Arguments of a co_await are named objects: GCC 12 mishandles temporaries inside one.)
    nlohmann::json health;
    health["status"] = "ok";
    health["prefillers"] = prefillers_.size();
    health["decoders"] = decoders_.size();
    // Each engine's last health-probe verdict: healthy, unhealthy, or starting (not answered yet;
    // also every engine while probing is off).
    nlohmann::json engines = nlohmann::json::object();
    for (size_t i = 0; i < prefillers_.size(); ++i) {
      engines[prefillers_.name(i)] = engine_health_name(prefillers_.health(i));
    }
    for (size_t i = 0; i < decoders_.size(); ++i) {
      engines[decoders_.name(i)] = engine_health_name(decoders_.health(i));
    }
    health["engines"] = engines;
    const std::string content_type = "application/json";
    const std::string body = health.dump();
    co_await writer.write_full(200, content_type, body, keep_alive);
    co_return keep_alive;
  }
  if (config_.client_api_key && !authorized(request)) {
    const std::string header(request[http::field::authorization]);
    ApiError error(HttpStatus::kUnauthorized,
                   header.empty() ? "Missing API key: send an 'Authorization: Bearer <key>' header"
                                  : "Incorrect API key provided",
                   std::nullopt, "invalid_api_key");
    co_await writer.write_error(error, keep_alive);
    co_return keep_alive;
  }
  if (path == "/metrics" && is_get) {
    const std::string content_type = kPrometheusContentType;
    const std::string body = metrics_.render();
    co_await writer.write_full(200, content_type, body, keep_alive);
    co_return keep_alive;
  }
  if (path == "/v1/models" && is_get) co_return co_await pass_through_models(stream, keep_alive);
  std::optional<ApiEndpoint> endpoint;
  if (path == "/v1/completions") endpoint = ApiEndpoint::kCompletions;
  if (path == "/v1/chat/completions") endpoint = ApiEndpoint::kChatCompletions;
  if (!endpoint || !is_post) {
    bool known = endpoint || path == "/health" || path == "/metrics" || path == "/v1/models";
    ApiError error = known ? ApiError(HttpStatus::kMethodNotAllowed,
                                      fmt::format("{} does not accept {}", path,
                                                  std::string(request.method_string())))
                           : ApiError(HttpStatus::kNotFound, fmt::format("no route for {}", path));
    co_await writer.write_error(error, keep_alive);
    co_return keep_alive;
  }

  ClientRequest client_request;
  client_request.endpoint = *endpoint;
  client_request.body = std::move(request.body());
  client_request.authorization = std::string(request[http::field::authorization]);
  client_request.keep_alive = keep_alive;
  client_request.received = SteadyClock::now();
  auto watch = std::make_shared<ClientWatch>(stream.get_executor());
  stream.expires_never();
  watch->start(stream, buffer);
  ProxyContext ctx(config_, prefillers_, decoders_, hub_, metrics_, stats_);
  DisaggFlow flow(ctx, std::move(client_request), writer, watch);
  bool keep = co_await flow.run();
  co_await watch->stop();
  co_return keep && !watch->client_gone();
}

bool ProxyServer::authorized(const http::request<http::string_body>& request) const {
  return constant_time_equal(request[http::field::authorization],
                             "Bearer " + *config_.client_api_key);
}

Task<bool> ProxyServer::pass_through_models(beast::tcp_stream& stream, bool keep_alive) {
  ClientWriter writer(stream, kWriteTimeout);
  BackendPool::Lease lease = decoders_.pick_any();
  const HttpEndpoint& endpoint = config_.decoders[lease.index()].http;
  UpstreamCall call(stream.get_executor(), endpoint, decoders_.name(lease.index()));
  SteadyClock::time_point deadline = SteadyClock::now() + config_.connect_timeout * 2;
  std::optional<ApiError> error;
  UpstreamResponse response;
  try {
    co_await call.connect(deadline);
    HeaderList headers;
    if (config_.api_key) headers.emplace_back("Authorization", "Bearer " + *config_.api_key);
    const std::string target = "/v1/models";
    const std::string no_body;
    co_await call.send(http::verb::get, target, no_body, headers, deadline);
    response = co_await call.read_response(deadline, config_.max_body_bytes);
  } catch (const UpstreamFailure& f) {
    error = ApiError(f.kind() == UpstreamFailureKind::kTimeout ? HttpStatus::kGatewayTimeout
                                                               : HttpStatus::kBadGateway,
                     f.what());
  }
  if (error) {
    co_await writer.write_error(*error, keep_alive);
  } else {
    co_await writer.write_full(response.status, response.content_type, response.body, keep_alive);
  }
  co_return keep_alive;
}

}  // namespace tandem
