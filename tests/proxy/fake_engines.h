// Test doubles for `tandem proxy`: a fake prefiller and a fake decoder (httplib servers on free
// ports that record what they receive), the prefiller's notification sender (a real UCX
// connection to the proxy's notification port, sending Hello then TransferDone / Abort), a raw
// HTTP client that returns the exact bytes of an answer, and an in-process proxy over them.
#pragma once
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>
#include <stdexcept>
#include <set>
#include <random>

#include "proxy/proxy_server.h"
#include "test_support.h"
#include "transfer/ucx_transport.h"

namespace tandem::test {

using nlohmann::json;
using namespace std::chrono_literals;

// A port nothing listens on (bound, then closed). Taken below Linux's ephemeral range
// (32768-60999): a port the kernel hands out for binding to 0 is also the source port of the next
// outgoing connection of any process, so a server started on it later can find it taken.
inline int dead_port() {
  static std::mutex mutex;
  static std::mt19937 rng{std::random_device{}()};
  static std::set<int> given;
  std::lock_guard lock(mutex);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = std::uniform_int_distribution<int>(20000, 32000)(rng);
    if (given.count(port)) continue;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(uint16_t(port));
    bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (free) {
      given.insert(port);
      return port;
    }
  }
  throw std::runtime_error("no free port in 20000-32000");
}

// Binds `server` to a free port on 127.0.0.1 and returns it. httplib 0.11 listens with a backlog
// of 5: a burst of hundreds of proxy connections overflows it, the kernel drops the handshakes'
// last ACKs, and a few connections hang half-open until the proxy's timeout. Listening again
// raises the backlog (Linux), as the engine's HttpServer does.
inline int bind_with_full_backlog(httplib::Server& server) {
  auto listen_socket = std::make_shared<socket_t>(INVALID_SOCKET);
  server.set_socket_options([listen_socket](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    *listen_socket = sock;
  });
  int port = server.bind_to_any_port("127.0.0.1");
  if (port <= 0 || ::listen(*listen_socket, SOMAXCONN) != 0) {
    throw std::runtime_error("a fake engine could not listen on 127.0.0.1");
  }
  return port;
}

// Polls `condition` every 20 ms for up to `limit`; whether it became true.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

// The POST /tandem/abort_transfer calls a fake engine received: which transfer ids, and when.
class AbortLog {
 public:
  void record(const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, false);
    std::lock_guard lock(mutex_);
    if (body.is_object() && body["req_id"].is_string()) {
      calls_.emplace_back(body["req_id"].get<std::string>(), std::chrono::steady_clock::now());
    }
    res.set_content(R"({"aborted":true})", "application/json");
  }
  // When the abort of `id` arrived; nullopt if it did not.
  std::optional<std::chrono::steady_clock::time_point> when(const std::string& id) const {
    std::lock_guard lock(mutex_);
    for (const auto& [got, at] : calls_) {
      if (got == id) return at;
    }
    return std::nullopt;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> calls_;
};

// A fake engine's GET /health: 200 after `delay_ms` (a hung engine answers too late).
inline void answer_health(httplib::Response& res, int delay_ms) {
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  res.set_content("", "text/plain");
}

// The routes both fake engines serve: the two generation endpoints (to `handler`), /health
// (answering `health_delay_ms` late) and the proxy's abort (recorded in `aborts`).
inline void add_engine_routes(httplib::Server& server, const httplib::Server::Handler& handler,
                              const std::atomic<int>& health_delay_ms, AbortLog& aborts) {
  server.Post("/v1/completions", handler);
  server.Post("/v1/chat/completions", handler);
  server.Get("/health", [&health_delay_ms](const httplib::Request&, httplib::Response& res) {
    answer_health(res, health_delay_ms.load());
  });
  server.Post("/tandem/abort_transfer",
              [&aborts](const httplib::Request& req, httplib::Response& res) {
                aborts.record(req, res);
              });
}

struct Received {
  std::string path;
  json body;
  std::string request_id;  // the X-Request-Id header
  std::string authorization;
};

// The prefiller's connection to the proxy's notification port.
class FakeNotifier {
 public:
  explicit FakeNotifier(uint16_t port) : transport_(make_ucx_transport()) {
    connection_ = transport_->connect("127.0.0.1", port, 5s);
    send_message(*connection_, Hello{kWireVersion, PeerRole::kSender, "fake-prefiller"});
    auto ack = recv_message(*connection_, 5s);
    if (!ack || !std::holds_alternative<HelloAck>(*ack) ||
        std::get<HelloAck>(*ack).status != HelloStatus::kOk || !std::get<HelloAck>(*ack).rkey.empty()) {
      throw std::runtime_error("the proxy did not answer Hello with HelloAck{ok, no buffer}");
    }
  }
  void done(const std::string& id) { send(TransferDone{id, {}}); }
  void abort(const std::string& id, const std::string& reason) { send(Abort{id, reason}); }
  // A notification to a proxy that has already stopped is lost, as it would be for a prefiller.
  void send(const WireMessage& m) {
    std::lock_guard lock(mutex_);
    try {
      send_message(*connection_, m);
    } catch (const TransportError&) {
    }
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Connection> connection_;
};

// What the fake prefiller does with a request.
enum class PrefillMode {
  kDoneAfterAnswer,   // answers, then sends TransferDone 20 ms later
  kDoneBeforeAnswer,  // sends TransferDone, waits 50 ms, then answers
  kAbort,             // answers, sends Abort
  kSilent,            // answers, sends nothing
  kReject400,         // a 400 JSON error, no transfer
  kFail500,           // a 500
  kSlow,              // answers after 3 s (a long prefill), then TransferDone
};

class FakePrefiller {
 public:
  FakePrefiller() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(256); };
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    add_engine_routes(server_, handler, health_delay_ms, aborts);
    port_ = bind_with_full_backlog(server_);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakePrefiller() {
    server_.stop();
    thread_.join();
    for (auto& t : senders_) t.join();
  }
  void connect_notifier(uint16_t proxy_notify_port) {
    notifier_ = std::make_unique<FakeNotifier>(proxy_notify_port);
  }
  int port() const { return port_; }
  std::vector<Received> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::atomic<PrefillMode> mode{PrefillMode::kDoneAfterAnswer};
  std::atomic<int> health_delay_ms{0};  // > 0: /health answers this late (a hung engine)
  // Answers return_token_ids with these prompt ids (as a Tandem or vLLM engine does); else
  // without any (an engine that ignores the field).
  static constexpr const char* kPromptIds = "[128000,12805,5304]";
  std::atomic<bool> answer_prompt_ids{false};
  AbortLog aborts;
  static constexpr const char* kBadRequestBody =
      R"({"error":{"message":"max_tokens must be at least 1, got -5.","type":"invalid_request_error","param":"max_tokens","code":null}})";

 private:
  void handle(const httplib::Request& req, httplib::Response& res) {
    Received r{req.path, json::parse(req.body), req.get_header_value("X-Request-Id"),
               req.get_header_value("Authorization")};
    std::string id = r.body["kv_transfer_params"]["disagg_spec"]["req_id"];
    {
      std::lock_guard lock(mutex_);
      received_.push_back(r);
    }
    PrefillMode m = mode.load();
    if (m == PrefillMode::kReject400) {
      res.status = 400;
      res.set_content(kBadRequestBody, "application/json");
      return;
    }
    if (m == PrefillMode::kFail500) {
      res.status = 500;
      res.set_content(R"({"error":{"message":"engine exploded","type":"server_error"}})",
                      "application/json");
      return;
    }
    if (m == PrefillMode::kDoneBeforeAnswer) {
      notifier_->done(id);
      std::this_thread::sleep_for(50ms);
    }
    if (m == PrefillMode::kSlow) std::this_thread::sleep_for(3s);
    if (answer_prompt_ids && r.body.value("return_token_ids", false)) {
      res.set_content(std::string(R"({"id":"x","object":"text_completion","choices":[{"index":0,)") +
                          R"("text":"A","token_ids":[32],"prompt_token_ids":)" + kPromptIds + "}]}",
                      "application/json");
    } else {
      res.set_content(R"({"id":"x","object":"text_completion","choices":[{"index":0,"text":"A"}]})",
                      "application/json");
    }
    if (m == PrefillMode::kDoneAfterAnswer || m == PrefillMode::kAbort || m == PrefillMode::kSlow) {
      std::lock_guard lock(mutex_);
      senders_.emplace_back([this, id, m] {
        std::this_thread::sleep_for(20ms);
        if (m == PrefillMode::kAbort) {
          notifier_->abort(id, "decoder buffer full past pd_transfer_timeout_sec");
        } else {
          notifier_->done(id);
        }
      });
    }
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::unique_ptr<FakeNotifier> notifier_;
  std::mutex mutex_;
  std::vector<Received> received_;
  std::vector<std::thread> senders_;
};

enum class DecodeMode {
  kNormal,         // the SSE pieces (stream) or the JSON answer
  kDieMidStream,   // two pieces, then the connection drops
  kSlowStream,     // a piece every 50 ms for 10 s (a client that leaves is noticed)
  kStall,          // sleeps 3 s before answering
  kReject400,
  kLingerAfterDone,  // the SSE pieces through data: [DONE], then 1 s before the stream ends
};

class FakeDecoder {
 public:
  FakeDecoder() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(1100); };
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    add_engine_routes(server_, handler, health_delay_ms, aborts);
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"fake-model","object":"model"}]})",
                      "application/json");
    });
    port_ = bind_with_full_backlog(server_);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeDecoder() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<Received> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  // The SSE answer, in the pieces the decoder writes (split mid-event on purpose).
  static std::vector<std::string> sse_pieces() {
    return {"data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"text\":\"Once\"}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"text\":\" upon\"}]}\n\ndata: {\"id\":",
            "\"c1\",\"choices\":[{\"index\":0,\"text\":\" a time\",\"finish_reason\":\"length\"}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":3}}\n\n",
            "data: [DONE]\n\n"};
  }
  static std::string sse_text() {
    std::string all;
    for (const auto& p : sse_pieces()) all += p;
    return all;
  }
  static constexpr const char* kJsonAnswer =
      R"({"id":"c1","object":"text_completion","choices":[{"index":0,"text":"Once upon a time","finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":3}})";

  std::atomic<DecodeMode> mode{DecodeMode::kNormal};
  std::atomic<int> health_delay_ms{0};  // > 0: /health answers this late (a hung engine)
  AbortLog aborts;
  std::atomic<bool> upstream_closed{false};  // kSlowStream: a write found the proxy gone
  // When > 0, each stream holds after its first piece until this many are open at once (at
  // most 20 s), so a test can prove the proxy carries them all concurrently.
  std::atomic<int> hold_until_open{0};
  std::atomic<int> max_open{0};
  std::atomic<int> header_delay_ms{0};  // > 0: the answer's status line comes this late

 private:
  void handle(const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body);
    {
      std::lock_guard lock(mutex_);
      received_.push_back({req.path, body, req.get_header_value("X-Request-Id"),
                           req.get_header_value("Authorization")});
    }
    DecodeMode m = mode.load();
    if (m == DecodeMode::kStall) std::this_thread::sleep_for(3s);
    if (header_delay_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(header_delay_ms));
    if (m == DecodeMode::kReject400) {
      res.status = 400;
      res.set_content(R"({"error":{"message":"bad","type":"invalid_request_error"}})",
                      "application/json");
      return;
    }
    bool stream = body.value("stream", false);
    if (!stream && m != DecodeMode::kDieMidStream) {
      res.set_content(kJsonAnswer, "application/json");
      return;
    }
    res.set_chunked_content_provider("text/event-stream", [this, m](size_t, httplib::DataSink& sink) {
      std::vector<std::string> pieces = sse_pieces();
      if (m == DecodeMode::kSlowStream) {
        for (int i = 0; i < 200; ++i) {
          std::string p = "data: {\"i\":" + std::to_string(i) + "}\n\n";
          if (!sink.write(p.data(), p.size()) || !sink.is_writable()) {
            upstream_closed = true;
            return false;
          }
          std::this_thread::sleep_for(50ms);
        }
        sink.done();
        return true;
      }
      for (size_t i = 0; i < pieces.size(); ++i) {
        if (m == DecodeMode::kDieMidStream && i == 2) return false;  // drops the connection
        sink.write(pieces[i].data(), pieces[i].size());
        if (i == 0 && hold_until_open > 0) hold_open();
        std::this_thread::sleep_for(2ms);
      }
      if (m == DecodeMode::kLingerAfterDone) std::this_thread::sleep_for(1s);
      sink.done();
      return true;
    });
  }

  void hold_open() {
    int now_open = ++open_;
    for (int seen = max_open.load(); now_open > seen && !max_open.compare_exchange_weak(seen, now_open);) {
    }
    auto end = std::chrono::steady_clock::now() + 20s;
    while (max_open < hold_until_open && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(5ms);
    }
    --open_;
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Received> received_;
  std::atomic<int> open_{0};
};

struct RawReply {
  int status = 0;
  std::string headers;
  std::string body;  // de-chunked
};

// One request over a fresh connection ("Connection: close"); the exact bytes of the answer.
inline RawReply raw_request(int port, const std::string& method, const std::string& path,
                            const std::string& body, const std::string& extra_headers = "") {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  RawReply reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return reply;
  }
  // Longer than any proxy timeout the end-to-end tests set that a failure should end with (their
  // transfer timeout, 10 s stretched by kLatencyScale): a client that gave up first would see no
  // answer where the proxy's 504 was coming (a prefiller killed mid-transfer, under ASan).
  timeval tv{30 * kLatencyScale, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                        extra_headers + "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string all;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) all.append(buf, size_t(n));
  close(fd);
  size_t header_end = all.find("\r\n\r\n");
  if (all.size() < 12 || header_end == std::string::npos) return reply;
  reply.status = std::stoi(all.substr(9, 3));
  reply.headers = all.substr(0, header_end);
  std::string rest = all.substr(header_end + 4);
  std::string lower = reply.headers;
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") == std::string::npos) {
    reply.body = rest;
    return reply;
  }
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t eol = rest.find("\r\n", pos);
    if (eol == std::string::npos) break;
    size_t size = std::stoul(rest.substr(pos, eol - pos), nullptr, 16);
    if (size == 0) break;
    reply.body += rest.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return reply;
}

inline RawReply post(int port, const std::string& path, const json& body,
                     const std::string& extra_headers = "") {
  return raw_request(port, "POST", path, body.dump(), extra_headers);
}

// A client that sends one request and hangs up when told (a client that leaves mid-request).
class LeavingClient {
 public:
  LeavingClient(int port, const std::string& path, const json& body) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(uint16_t(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("LeavingClient: cannot connect to port " + std::to_string(port));
    }
    timeval tv{30, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string text = body.dump();
    std::string request = "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(text.size()) + "\r\n\r\n" + text;
    send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  }
  ~LeavingClient() { leave(); }
  // Waits for the first bytes of the answer (a stream has started); whether they came.
  bool wait_for_answer_start() {
    char buf[4096];
    return recv(fd_, buf, sizeof buf, 0) > 0;
  }
  // Reads the answer until its bytes contain `text`; whether they did before it ended.
  bool read_until(const std::string& text) {
    std::string got;
    char buf[4096];
    while (got.find(text) == std::string::npos) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      got.append(buf, size_t(n));
    }
    return true;
  }
  void leave() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// An in-process proxy in front of fake prefillers and decoders, on free ports.
class ProxyRig {
 public:
  ProxyRig(int num_prefillers, int num_decoders, std::function<void(ProxyConfig&)> tweak = {}) {
    ProxyConfig c;
    c.host = "127.0.0.1";
    c.port = 0;
    c.notify_host = "127.0.0.1";
    c.notify_port = 0;
    c.threads = 2;
    c.transfer_timeout = 5s;
    c.prefill_timeout = 10s;
    c.decode_timeout = 10s;
    for (int i = 0; i < num_prefillers; ++i) {
      prefillers.push_back(std::make_unique<FakePrefiller>());
      c.prefillers.push_back({"127.0.0.1", uint16_t(prefillers.back()->port())});
    }
    for (int i = 0; i < num_decoders; ++i) {
      decoders.push_back(std::make_unique<FakeDecoder>());
      c.decoders.push_back({{"127.0.0.1", uint16_t(decoders.back()->port())},
                            uint16_t(17300 + i), uint16_t(17400 + i)});
    }
    if (tweak) tweak(c);
    proxy = std::make_unique<ProxyServer>(c, [this](const std::string& block) {
      std::lock_guard lock(stats_mutex);
      stats_blocks.push_back(block);
    });
    proxy->start();
    for (auto& p : prefillers) p->connect_notifier(proxy->notify_port());
  }
  ~ProxyRig() { proxy->stop(); }
  int port() const { return proxy->port(); }

  std::vector<std::unique_ptr<FakePrefiller>> prefillers;
  std::vector<std::unique_ptr<FakeDecoder>> decoders;
  std::unique_ptr<ProxyServer> proxy;
  std::mutex stats_mutex;
  std::vector<std::string> stats_blocks;
};

}  // namespace tandem::test
