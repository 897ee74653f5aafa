// Test helpers for the OpenAI server: an in-process server on a free port over any
// EngineClient (a FakeEngine or the real LlmEngine), the stories260K tokenizer, a ChatML chat
// template, and small HTTP client helpers (JSON posts, SSE streams). Set TANDEM_TEST_LOG=1 to
// see the server's access log while debugging.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "server/chat_prompt.h"
#include "server/openai_server.h"
#include "server/sse.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace tandem::test {

using nlohmann::json;

// The ChatML template from the chat golden data (stories260K has no template of its own).
inline std::string chatml_template() {
  return read_json_file(shared_dir() / "golden" / "chat" / "chatml.json")["template"];
}

struct HttpReply {
  int status = 0;
  json body;  // parsed when the body is JSON, else null
  std::string raw;
};

struct StreamReply {
  int status = 0;
  std::vector<std::string> events;  // SSE data payloads, "[DONE]" included
  std::string raw;
};

class TestServer {
 public:
  TestServer(EngineClient& engine, const Tokenizer& tokenizer, ServedModel model,
             HttpServerOptions http = {}) {
    chat_ = std::make_unique<ChatPromptRenderer>(chatml_template(), tokenizer.bos_token(),
                                                 tokenizer.eos_token());
    ServingContext ctx;
    ctx.engine = &engine;
    ctx.tokenizer = &tokenizer;
    ctx.chat = chat_.get();
    ctx.model = std::move(model);
    http.host = "127.0.0.1";
    http.port = 0;
    http.request_logging =
        std::getenv("TANDEM_TEST_LOG") ? RequestLogging::kOn : RequestLogging::kOff;
    server_ = std::make_unique<OpenAiServer>(std::move(ctx), std::move(http));
    server_->start();
  }
  ~TestServer() { server_->stop(); }

  int port() const { return server_->port(); }
  OpenAiServer& server() { return *server_; }

  httplib::Client client(httplib::Headers headers = {}) const {
    httplib::Client c("127.0.0.1", port());
    c.set_read_timeout(60, 0);
    c.set_default_headers(std::move(headers));
    return c;
  }

  HttpReply post(const std::string& path, const json& body, httplib::Headers headers = {}) const {
    return post_raw(path, body.dump(), std::move(headers));
  }
  HttpReply post_raw(const std::string& path, const std::string& body,
                     httplib::Headers headers = {}) const {
    auto c = client(std::move(headers));
    return to_reply(c.Post(path.c_str(), body, "application/json"));
  }
  HttpReply get(const std::string& path, httplib::Headers headers = {}) const {
    auto c = client(std::move(headers));
    return to_reply(c.Get(path.c_str()));
  }

  // Posts and reads the SSE events; stops reading (closing the connection) after `max_events`.
  StreamReply stream(const std::string& path, const json& body,
                     size_t max_events = size_t(-1)) const {
    auto c = client();
    StreamReply reply;
    SseParser parser;
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      reply.raw.append(data, len);
      for (auto& e : parser.feed(std::string_view(data, len))) reply.events.push_back(e);
      return reply.events.size() < max_events;
    };
    auto result = c.send(req);
    if (result)
      reply.status = result->status;
    else
      reply.raw = "client error " + std::to_string(int(result.error()));
    return reply;
  }

  static HttpReply to_reply(const httplib::Result& r) {
    HttpReply reply;
    if (!r) return reply;
    reply.status = r->status;
    reply.raw = r->body;
    reply.body = json::parse(r->body, nullptr, false);
    if (reply.body.is_discarded()) reply.body = nullptr;
    return reply;
  }

 private:
  std::unique_ptr<ChatPromptRenderer> chat_;
  std::unique_ptr<OpenAiServer> server_;
};

// The chunks of an SSE reply, parsed (the trailing [DONE] checked and dropped).
inline std::vector<json> parse_chunks(const StreamReply& reply) {
  std::vector<json> chunks;
  EXPECT_FALSE(reply.events.empty());
  if (reply.events.empty()) return chunks;
  EXPECT_EQ(reply.events.back(), "[DONE]") << reply.raw;
  for (size_t i = 0; i + 1 < reply.events.size(); ++i)
    chunks.push_back(json::parse(reply.events[i]));
  return chunks;
}

}  // namespace tandem::test
