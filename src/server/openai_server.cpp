// OpenAiServer: routes, and the small endpoints (models, health, metrics, version, and the
// proxy's abort_transfer).
#include "server/openai_server.h"

#include "core/error.h"
#include "server/metrics.h"
#include "server/openai_errors.h"
#include "server/openai_protocol.h"
#include "server/request_fields.h"

namespace tandem {

namespace {

ServingContext with_metrics(ServingContext ctx, ServerMetrics* metrics) {
  TANDEM_CHECK(ctx.engine && ctx.tokenizer, "the OpenAI server needs an engine and a tokenizer");
  TANDEM_CHECK(!ctx.model.names.empty(), "the OpenAI server needs a served model name");
  ctx.metrics = metrics;
  return ctx;
}

}  // namespace

OpenAiServer::OpenAiServer(ServingContext ctx, HttpServerOptions http_options)
    : metrics_(std::make_unique<ServerMetrics>(ctx.model.names.empty() ? "" : ctx.model.names[0])),
      ctx_(with_metrics(std::move(ctx), metrics_.get())),
      completions_(ctx_),
      chat_(ctx_),
      tokenize_(ctx_),
      http_(std::move(http_options)) {
  add_routes();
}

OpenAiServer::~OpenAiServer() { http_.stop(); }

void OpenAiServer::add_routes() {
  http_.post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    completions_.handle(req, res);
  });
  http_.post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    chat_.handle(req, res);
  });
  http_.post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    tokenize_.tokenize(req, res);
  });
  http_.post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    tokenize_.detokenize(req, res);
  });
  http_.post("/tandem/abort_transfer", [this](const httplib::Request& req, httplib::Response& res) {
    abort_transfer(req, res);
  });
  http_.get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { models(res); });
  http_.get("/metrics", [this](const httplib::Request&, httplib::Response& res) { metrics(res); });
  http_.get("/health", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  http_.get("/version", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump_json(OrderedJson{{"version", kTandemVersion}}), "application/json");
  });
}

void OpenAiServer::models(httplib::Response& res) const {
  OrderedJson data = OrderedJson::array();
  for (const std::string& name : ctx_.model.names) {
    data.push_back({{"id", name},
                    {"object", "model"},
                    {"created", ctx_.model.created},
                    {"owned_by", "tandem"},
                    {"root", ctx_.model.root},
                    {"parent", nullptr},
                    {"max_model_len", ctx_.model.max_model_len}});
  }
  res.set_content(dump_json(OrderedJson{{"object", "list"}, {"data", std::move(data)}}),
                  "application/json");
}

// The proxy calls this when a client disconnects mid-request, on the prefiller and the decoder
// alike: the requests carrying the transfer id stop, and its KV (queued, in flight or received)
// is freed at once rather than at pd_transfer_timeout_sec.
void OpenAiServer::abort_transfer(const httplib::Request& req, httplib::Response& res) const {
  OrderedJson body = parse_json_object(req.body);
  RequestFields fields(body);
  std::optional<std::string> id = fields.string("req_id");
  if (!id || id->empty() || id->size() > 256) {
    fail_param("req_id", "'req_id' must be a transfer id of 1 to 256 characters");
  }
  ctx_.engine->abort_transfer(*id);
  res.set_content(dump_json(OrderedJson{{"req_id", *id}, {"aborted", true}}), "application/json");
}

void OpenAiServer::metrics(httplib::Response& res) const {
  res.set_content(metrics_->render(ctx_.engine->stats()), kPrometheusContentType);
}

}  // namespace tandem
