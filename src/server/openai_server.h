// OpenAiServer: the OpenAI-compatible HTTP API over one engine: /v1/completions,
// /v1/chat/completions, /v1/models, /tokenize, /detokenize, /health, /metrics and /version on
// an HttpServer. It owns the handlers and the metrics; the engine, tokenizer and chat template
// are the caller's and must outlive it.
#pragma once
#include <memory>

#include "server/chat_handler.h"
#include "server/completion_handler.h"
#include "server/http_server.h"
#include "server/serving_context.h"
#include "server/tokenize_handler.h"

namespace tandem {

// The version /version reports.
inline constexpr const char* kTandemVersion = "0.1.0";

class OpenAiServer {
 public:
  // `ctx.metrics` is ignored: the server makes its own (labelled with the first served name).
  OpenAiServer(ServingContext ctx, HttpServerOptions http_options);
  ~OpenAiServer();

  int bind() { return http_.bind(); }  // the bound port
  void start() { http_.start(); }      // serve on a background thread
  void run() { http_.run(); }          // serve until stop()
  void stop() { http_.stop(); }        // thread-safe; ends open streams
  [[nodiscard]] int port() const { return http_.port(); }
  [[nodiscard]] const ServingContext& context() const { return ctx_; }

 private:
  void add_routes();
  void models(httplib::Response& res) const;
  void metrics(httplib::Response& res) const;
  // POST /tandem/abort_transfer {"req_id": ID}: the proxy's client of transfer ID left.
  void abort_transfer(const httplib::Request& req, httplib::Response& res) const;

  std::unique_ptr<ServerMetrics> metrics_;
  ServingContext ctx_;
  CompletionHandler completions_;
  ChatHandler chat_;
  TokenizeHandler tokenize_;
  HttpServer http_;
};

}  // namespace tandem
