// HttpServer plumbing: routing, error bodies, the body limit, the API key, the thread pool
// size (concurrent blocked handlers) and stopping with a stream open.
#include "server/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "server/openai_errors.h"

namespace tandem {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

HttpServerOptions local_options() {
  HttpServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.request_logging = RequestLogging::kOff;
  return o;
}

json error_of(const httplib::Result& r) {
  EXPECT_TRUE(r);
  json body = json::parse(r->body);
  EXPECT_TRUE(body.contains("error")) << r->body;
  return body["error"];
}

TEST(HttpServer, RoutesAndTurnsExceptionsIntoOpenAiErrors) {
  HttpServer server(local_options());
  server.get("/ok", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("fine", "text/plain");
  });
  server.post("/api_error", [](const httplib::Request&, httplib::Response&) {
    fail_param("n", "n must be at most 128, got {}", 1000);
  });
  server.post("/validation", [](const httplib::Request&, httplib::Response&) {
    fail("temperature must be non-negative, got -1");
  });
  server.post("/bug",
              [](const httplib::Request&, httplib::Response&) { throw std::logic_error("oops"); });
  server.start();
  httplib::Client client("127.0.0.1", server.port());

  auto ok = client.Get("/ok");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "fine");

  auto r = client.Post("/api_error", "{}", "application/json");
  EXPECT_EQ(r->status, 400);
  json e = error_of(r);
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["param"], "n");
  EXPECT_EQ(e["message"], "n must be at most 128, got 1000");
  EXPECT_TRUE(e["code"].is_null());

  r = client.Post("/validation", "{}", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(error_of(r)["message"], "temperature must be non-negative, got -1");

  r = client.Post("/bug", "{}", "application/json");
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(error_of(r)["type"], "server_error");

  r = client.Get("/nowhere");
  EXPECT_EQ(r->status, 404);
  EXPECT_THAT(error_of(r)["message"].get<std::string>(), HasSubstr("GET /nowhere"));

  // A known path asked with a method it does not serve: 405, as the proxy answers.
  r = client.Get("/api_error");
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(error_of(r)["message"], "/api_error does not accept GET");
  r = client.Delete("/ok");
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(error_of(r)["type"], "invalid_request_error");
}

TEST(HttpServer, RejectsBodiesOverTheLimitWith413) {
  HttpServerOptions o = local_options();
  o.max_body_bytes = 1000;
  HttpServer server(o);
  server.post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(std::to_string(req.body.size()), "text/plain");
  });
  server.start();
  httplib::Client client("127.0.0.1", server.port());
  auto small = client.Post("/echo", std::string(1000, 'x'), "text/plain");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 200);
  auto big = client.Post("/echo", std::string(5000, 'x'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(error_of(big)["code"], "payload_too_large");
}

TEST(HttpServer, ApiKeyGuardsEveryPathButHealth) {
  HttpServerOptions o = local_options();
  o.api_key = "sekret";
  HttpServer server(o);
  for (const char* path : {"/health", "/metrics"}) {
    server.get(path, [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  }
  server.start();
  httplib::Client client("127.0.0.1", server.port());
  EXPECT_EQ(client.Get("/health")->status, 200);
  auto r = client.Get("/metrics");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(error_of(r)["code"], "invalid_api_key");
  EXPECT_EQ(client.Get("/metrics", {{"Authorization", "Bearer wrong"}})->status, 401);
  EXPECT_EQ(client.Get("/metrics", {{"Authorization", "sekret"}})->status, 401);
  EXPECT_EQ(client.Get("/metrics", {{"Authorization", "Bearer sekret"}})->status, 200);
  EXPECT_EQ(client.Get("/nowhere", {{"Authorization", "Bearer sekret"}})->status, 404);
  EXPECT_EQ(client.Get("/nowhere")->status, 401);
}

// Handlers that all block until every one of them has arrived: only a pool with a thread per
// concurrent request gets them all in.
TEST(HttpServer, ServesAsManyConcurrentRequestsAsItHasThreads) {
  constexpr int kClients = 40;
  HttpServerOptions o = local_options();
  o.num_threads = kClients;
  HttpServer server(o);
  std::mutex mutex;
  std::condition_variable cv;
  int arrived = 0;
  server.get("/wait", [&](const httplib::Request&, httplib::Response& res) {
    std::unique_lock lock(mutex);
    ++arrived;
    cv.notify_all();
    bool all = cv.wait_for(lock, std::chrono::seconds(10), [&] { return arrived >= kClients; });
    res.set_content(all ? "all" : "timeout", "text/plain");
  });
  server.start();
  std::vector<std::future<std::string>> results;
  for (int i = 0; i < kClients; ++i) {
    results.push_back(std::async(std::launch::async, [&] {
      httplib::Client client("127.0.0.1", server.port());
      client.set_read_timeout(20, 0);
      auto r = client.Get("/wait");
      return r ? r->body : std::string("no response");
    }));
  }
  for (auto& f : results) EXPECT_EQ(f.get(), "all");
}

TEST(HttpServer, StopEndsAnOpenStream) {
  HttpServer server(local_options());
  std::atomic<int> chunks{0};
  server.get("/stream", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/event-stream", [&](size_t, httplib::DataSink& sink) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      ++chunks;
      return sink.write("data: x\n\n", 9);
    });
  });
  server.start();
  std::thread client_thread([&] {
    httplib::Client client("127.0.0.1", server.port());
    client.Get("/stream", [](const char*, size_t) { return true; });
  });
  while (chunks < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server.stop();  // must return although the client would read forever
  client_thread.join();
  EXPECT_TRUE(server.is_stopping());
}

TEST(HttpServer, StopRightAfterStartAndRunAfterStopReturn) {
  for (int i = 0; i < 20; ++i) {
    HttpServer server(local_options());
    server.start();
    server.stop();
  }
  HttpServer server(local_options());
  server.stop();
  server.run();  // returns at once: already stopped
}

TEST(HttpServer, BindFailsClearlyOnAPortInUse) {
  HttpServer first(local_options());
  first.start();
  HttpServerOptions o = local_options();
  o.port = first.port();
  HttpServer second(o);
  try {
    second.bind();
    FAIL() << "bind should fail";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(o.port)));
  }
}

}  // namespace
}  // namespace tandem
