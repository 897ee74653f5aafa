// FakeUpstream: an HTTP server for the benchmark client's tests that streams OpenAI-style SSE
// on a script: the first token `first_token` after the request arrives, then one every `gap`,
// then a usage chunk and [DONE]. Chunks are sent at absolute deadlines so delays never add up,
// and each request's arrival and send times are kept (served()): a loaded machine wakes the
// server late now and then, and the client is judged against what the server really did.
// Also serves failing routes: /fail/... (HTTP 500), /midstream/... (an error event after one
// token) and /empty/... (200 with no token).
#pragma once
#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tandem::bench::test {

struct Script {
  std::chrono::milliseconds first_token{200};
  std::chrono::milliseconds gap{10};
  int tokens = 20;
  int prompt_tokens = 7;
};

// What the server did for one request: when it arrived and when each token chunk was written.
struct Served {
  std::chrono::steady_clock::time_point arrived;
  std::vector<std::chrono::steady_clock::time_point> sent;
};

class FakeUpstream {
 public:
  explicit FakeUpstream(Script script) : script_(script) {
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      stream(req, res, /*chat=*/false);
    });
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   stream(req, res, /*chat=*/true);
                 });
    server_.Post("/fail/v1/completions", [](const httplib::Request&, httplib::Response& res) {
      res.status = 500;
      res.set_content(R"({"error": {"message": "scripted failure"}})", "application/json");
    });
    server_.Post("/midstream/v1/completions", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "data: {\"choices\": [{\"text\": \"a\"}]}\n\n"
          "data: {\"error\": {\"message\": \"engine died\"}}\n\n",
          "text/event-stream");
    });
    server_.Post("/empty/v1/completions", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("data: [DONE]\n\n", "text/event-stream");
    });
    server_.Get("/ping", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("pong", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Warm up: the accept loop and a worker thread are running before any timed request.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    httplib::Client("127.0.0.1", port_).Get("/ping");
  }
  ~FakeUpstream() {
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }
  // The streamed requests so far, by request body (the last one of each body).
  std::map<std::string, Served> served() const {
    std::lock_guard lock(mutex_);
    return served_;
  }

 private:
  void stream(const httplib::Request& req, httplib::Response& res, bool chat) {
    const auto arrived = std::chrono::steady_clock::now();
    const Script s = script_;
    {
      std::lock_guard lock(mutex_);
      served_[req.body] = Served{arrived, {}};
    }
    res.set_chunked_content_provider("text/event-stream", [this, s, chat, arrived, body = req.body](
                                                              size_t, httplib::DataSink& sink) {
      for (int k = 0; k < s.tokens; ++k) {
        std::this_thread::sleep_until(arrived + s.first_token + k * s.gap);
        {
          std::lock_guard lock(mutex_);
          served_[body].sent.push_back(std::chrono::steady_clock::now());
        }
        const std::string chunk =
            chat ? fmt::format(R"({{"choices": [{{"index": 0, "delta": {{"content": "t{}"}}}}]}})",
                               k)
                 : fmt::format(R"({{"choices": [{{"index": 0, "text": "t{}"}}]}})", k);
        const std::string event = "data: " + chunk + "\n\n";
        if (!sink.write(event.data(), event.size())) return false;
      }
      const std::string tail = fmt::format(
          "data: {{\"choices\": [], \"usage\": {{\"prompt_tokens\": {}, \"completion_tokens\": "
          "{}}}}}\n\ndata: [DONE]\n\n",
          s.prompt_tokens, s.tokens);
      sink.write(tail.data(), tail.size());
      sink.done();
      return true;
    });
  }

  Script script_;
  mutable std::mutex mutex_;
  std::map<std::string, Served> served_;
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
};

}  // namespace tandem::bench::test
