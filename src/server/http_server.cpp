// HttpServer: cpp-httplib set up for an OpenAI-style API (thread pool, limits, auth, errors,
// access log).
#include "server/http_server.h"

#include <sys/socket.h>

#include <chrono>
#include <string_view>

#include "core/constant_time.h"
#include "core/error.h"
#include "core/logging.h"
#include "server/openai_errors.h"

namespace tandem {
namespace {

using Clock = std::chrono::steady_clock;

// When the current handler thread started on its request (for the access log line; httplib
// runs pre-routing, the handler and the logger of one request on the same thread).
thread_local Clock::time_point t_request_start;

const char* default_message(int status) {
  switch (status) {
    case 400:
      return "Bad request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not found";
    case 405:
      return "Method not allowed";
    case 413:
      return "Request body too large";
    default:
      return status >= 500 ? "Internal server error" : "Request failed";
  }
}

}  // namespace

void set_error_response(httplib::Response& res, int status, const std::string& message,
                        const char* code) {
  ApiError error(HttpStatus(status), message, std::nullopt,
                 code ? std::optional<std::string>(code) : std::nullopt);
  res.status = status;
  res.set_content(error.to_json(), "application/json");
}

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {
  TANDEM_CHECK(options_.num_threads >= 1, "the HTTP server needs at least one thread");
  size_t threads = options_.num_threads;
  server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_.set_payload_max_length(options_.max_body_bytes);
  // httplib's default also sets SO_REUSEPORT, which lets a second server silently share the
  // port; keep only SO_REUSEADDR so "address in use" is an error.
  server_.set_socket_options([this](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_socket_ = sock;
  });
  server_.set_keep_alive_max_count(1000);
  server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_request_start = Clock::now();
    return check_api_key(req, res);
  });
  httplib::Server::HandlerWithResponse on_error = [this](const httplib::Request& req,
                                                         httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404 && routed_paths_.count(req.path)) res.status = 405;
    std::string message = default_message(res.status);
    if (res.status == 404) message = "Not found: " + req.method + " " + req.path;
    if (res.status == 405) message = req.path + " does not accept " + req.method;
    set_error_response(res, res.status, message, res.status == 413 ? "payload_too_large" : nullptr);
    return httplib::Server::HandlerResponse::Handled;
  };
  server_.set_error_handler(std::move(on_error));
  server_.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        set_error_response(res, 500, "Internal server error");
      });
  server_.set_logger(
      [this](const httplib::Request& req, const httplib::Response& res) { log_request(req, res); });
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::get(const std::string& path, Handler handler) {
  routed_paths_.insert(path);
  server_.Get(path, wrap(std::move(handler)));
}

void HttpServer::post(const std::string& path, Handler handler) {
  routed_paths_.insert(path);
  server_.Post(path, wrap(std::move(handler)));
}

HttpServer::Handler HttpServer::wrap(Handler handler) const {
  return [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    try {
      handler(req, res);
    } catch (const ApiError& e) {
      res.status = int(e.status());
      res.set_content(e.to_json(), "application/json");
    } catch (const Error& e) {  // request validation
      set_error_response(res, 400, e.what());
    } catch (const std::exception& e) {
      log_error("{} {}: internal error: {}", req.method, req.path, e.what());
      set_error_response(res, 500, std::string("Internal server error: ") + e.what());
    }
  };
}

httplib::Server::HandlerResponse HttpServer::check_api_key(const httplib::Request& req,
                                                           httplib::Response& res) const {
  if (!options_.api_key || req.path == "/health")
    return httplib::Server::HandlerResponse::Unhandled;
  const std::string header = req.get_header_value("Authorization");
  const std::string expected = "Bearer " + *options_.api_key;
  if (constant_time_equal(header, expected)) return httplib::Server::HandlerResponse::Unhandled;
  set_error_response(res, 401,
                     header.empty() ? "Missing API key: send an 'Authorization: Bearer <key>' "
                                      "header"
                                    : "Incorrect API key provided",
                     "invalid_api_key");
  return httplib::Server::HandlerResponse::Handled;
}

void HttpServer::log_request(const httplib::Request& req, const httplib::Response& res) const {
  if (options_.request_logging == RequestLogging::kOff) return;
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t_request_start).count();
  log_info("{}:{} \"{} {}\" {} {:.1f} ms", req.remote_addr, req.remote_port, req.method, req.path,
           res.status, ms);
}

int HttpServer::bind() {
  if (port_ >= 0) return port_;
  if (options_.port == 0) {
    port_ = server_.bind_to_any_port(options_.host);
  } else if (server_.bind_to_port(options_.host, options_.port)) {
    port_ = options_.port;
  }
  TANDEM_CHECK(port_ > 0, "cannot listen on {}:{} (address in use or not available)", options_.host,
               options_.port);
  // httplib 0.11 listens with a backlog of 5: a burst of clients (64 streams opening at once)
  // would overflow it and lose connections. Listening again raises the backlog (Linux).
  TANDEM_CHECK(::listen(listen_socket_, SOMAXCONN) == 0, "listen() on {}:{} failed", options_.host,
               port_);
  return port_;
}

void HttpServer::run() {
  start();
  std::unique_lock lock(mutex_);
  finished_cv_.wait(lock, [this] { return finished_; });
}

void HttpServer::start() {
  bind();
  std::unique_lock lock(mutex_);
  if (stopping_) finished_ = true;
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] {
    server_.listen_after_bind();
    std::lock_guard done_lock(mutex_);
    finished_ = true;
    finished_cv_.notify_all();
  });
  // httplib's stop() is a no-op until the listen loop runs: wait for it (or its failure).
  while (!server_.is_running() && !finished_) {
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    lock.lock();
  }
}

void HttpServer::stop() {
  std::thread thread;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    server_.stop();
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

}  // namespace tandem
