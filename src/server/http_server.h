// HttpServer: the HTTP plumbing under the OpenAI routes, on cpp-httplib. It owns the listening
// socket and a handler thread pool sized for long-lived streams (each open SSE stream holds a
// thread), enforces the body-size limit and the API key, turns exceptions into OpenAI error
// bodies, and logs one line per request.
#pragma once
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace tandem {

enum class RequestLogging { kOn, kOff };

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  int port = 8000;                     // 0 = any free port (see HttpServer::port())
  size_t num_threads = 64;             // handler threads: concurrent requests and streams
  size_t max_body_bytes = 32u << 20;   // larger bodies get a 413
  std::optional<std::string> api_key;  // set: every path but /health needs the key
  RequestLogging request_logging = RequestLogging::kOn;
};

class HttpServer {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // stops and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes (exact paths). Handlers may throw ApiError / tandem::Error / anything.
  void get(const std::string& path, Handler handler);
  void post(const std::string& path, Handler handler);

  // Binds the socket (throws tandem::Error when it cannot); returns the bound port.
  int bind();
  // Serves until stop() (called from another thread); binds first if bind() was not called.
  void run();
  // Serves on a background thread; returns once it accepts connections.
  void start();
  // Stops accepting, ends open streams and waits for the handler threads. Thread-safe.
  void stop();

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] bool is_stopping() const { return stopping_.load(); }

 private:
  Handler wrap(Handler handler) const;
  httplib::Server::HandlerResponse check_api_key(const httplib::Request& req,
                                                 httplib::Response& res) const;
  void log_request(const httplib::Request& req, const httplib::Response& res) const;

  HttpServerOptions options_;
  // Every routed path (any method): a known path asked with another method is a 405, not a 404.
  // Routes are added before start(); read-only once serving.
  std::set<std::string> routed_paths_;
  httplib::Server server_;
  std::mutex mutex_;  // guards thread_, finished_ (and start/stop ordering)
  std::condition_variable finished_cv_;
  std::thread thread_;     // the listen loop
  bool finished_ = false;  // the listen loop returned
  int port_ = -1;
  int listen_socket_ = -1;  // the bound socket (set while binding)
  std::atomic<bool> stopping_{false};
};

// Writes an OpenAI error body with the given status (used by handlers and the plumbing).
void set_error_response(httplib::Response& res, int status, const std::string& message,
                        const char* code = nullptr);

}  // namespace tandem
