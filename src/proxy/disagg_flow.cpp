// DisaggFlow: prefill -> transfer -> decode for one client request.
#include "proxy/disagg_flow.h"

#include "core/logging.h"
#include "proxy/engine_abort.h"

namespace tandem {
namespace {

using std::chrono::duration;

// How often a request waiting for its KV transfer looks at its prefiller's health verdict.
constexpr std::chrono::milliseconds kHealthRecheck{100};

// The client went away (its socket closed or a write to it failed).
struct ClientLeft {};

double seconds_since(SteadyClock::time_point start) {
  return duration<double>(SteadyClock::now() - start).count();
}

std::string engine_name(const char* role, const HttpEndpoint& e) {
  return fmt::format("{} {}:{}", role, e.host, e.port);
}

// The message of an engine's error answer: error.message from OpenAI-style JSON, else the text.
std::string upstream_message(const UpstreamResponse& response) {
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("error")) {
    const auto& error = body["error"];
    if (error.is_object() && error.contains("message") && error["message"].is_string()) {
      return error["message"].get<std::string>();
    }
    if (error.is_string()) return error.get<std::string>();
  }
  std::string text = response.body.substr(0, 200);
  return text.empty() ? "(empty body)" : text;
}

bool is_event_stream(const std::string& content_type) {
  return content_type.rfind("text/event-stream", 0) == 0;
}

// Whether an SSE stream whose last bytes are `tail` has ended with its `data: [DONE]` event.
bool ends_with_done_event(std::string_view tail) {
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.remove_suffix(1);
  constexpr std::string_view kDone = "data: [DONE]";
  return tail.size() >= kDone.size() && tail.substr(tail.size() - kDone.size()) == kDone;
}

}  // namespace

DisaggFlow::DisaggFlow(ProxyContext& ctx, ClientRequest request, ClientWriter& client,
                       std::shared_ptr<ClientWatch> watch)
    : ctx_(ctx), request_(std::move(request)), client_(client), watch_(std::move(watch)) {}

HeaderList DisaggFlow::upstream_headers() const {
  HeaderList headers = {{"X-Request-Id", id_}};
  if (ctx_.config.api_key) {
    headers.emplace_back("Authorization", "Bearer " + *ctx_.config.api_key);
  } else if (!request_.authorization.empty()) {
    headers.emplace_back("Authorization", request_.authorization);
  }
  return headers;
}

SteadyClock::time_point DisaggFlow::connect_deadline(SteadyClock::time_point call_deadline) const {
  return std::min(call_deadline, SteadyClock::now() + ctx_.config.connect_timeout);
}

void DisaggFlow::fail_upstream(const UpstreamFailure& failure, ProxyErrorKind unreachable,
                               ProxyErrorKind broken, ProxyErrorKind timeout) {
  switch (failure.kind()) {
    case UpstreamFailureKind::kAborted: throw ClientLeft{};
    case UpstreamFailureKind::kTimeout:
      throw ProxyFailure(HttpStatus::kGatewayTimeout, timeout, failure.what());
    case UpstreamFailureKind::kUnreachable:
      throw ProxyFailure(HttpStatus::kBadGateway, unreachable, failure.what());
    case UpstreamFailureKind::kBroken: break;
  }
  throw ProxyFailure(HttpStatus::kBadGateway, broken, failure.what());
}

Task<bool> DisaggFlow::run() {
  ctx_.metrics.request_started(api_endpoint_path(request_.endpoint));
  std::optional<ProxyFailure> failure;
  bool client_left = false;
  try {
    co_await serve();
  } catch (const ProxyFailure& f) {
    failure = f;
  } catch (const ApiError& e) {
    failure = ProxyFailure(e.status(), ProxyErrorKind::kBadRequest, e.what());
  } catch (const ClientLeft&) {
    client_left = true;
  } catch (const boost::system::system_error&) {
    client_left = true;  // a write to the client failed
  } catch (const std::exception& e) {
    failure = ProxyFailure(HttpStatus::kInternalServerError, ProxyErrorKind::kDecodeFailed,
                           fmt::format("proxy error: {}", e.what()));
  }
  ctx_.hub.forget(id_);
  ctx_.metrics.request_finished();
  const bool left = client_left || watch_->client_gone();
  if (!left && !failure) co_return request_.keep_alive;
  // A client may close as soon as it has read `data: [DONE]` (vLLM's benchmark client does),
  // before the decoder's stream has ended: it had its whole answer, so that is no error.
  if (left && answer_delivered_) co_return false;
  // The client left, or the request failed (an upstream error or timeout, a failed transfer):
  // the engines drop what they still hold of it — a queued or running request, the decoder's
  // transfer pages — now rather than at their own timeouts.
  abort_on_engines();
  if (left) {
    ctx_.metrics.error(ProxyErrorKind::kClientDisconnected);
    log_info("request {}: the client left; upstream calls closed", id_);
    co_return false;
  }
  ctx_.metrics.error(failure->kind());
  if (failure->kind() != ProxyErrorKind::kBadRequest || int(failure->status()) >= 500) {
    log_warning("request {}: {} ({})", id_, failure->what(), int(failure->status()));
  }
  bool keep_alive = request_.keep_alive;
  try {
    if (!client_.started()) {
      co_await client_.write_error(*failure, keep_alive);
    } else {
      // Mid-stream: an SSE error event, then the end of the stream.
      std::string event = client_.at_event_boundary() ? "" : "\n\n";
      nlohmann::json error = nlohmann::json::parse(failure->to_json());
      error["error"]["code"] = int(failure->status());
      event += "data: " + error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
               "\n\ndata: [DONE]\n\n";
      co_await client_.write_piece(event);
      co_await client_.end_stream();
    }
  } catch (const std::exception&) {
    keep_alive = false;
  }
  co_return keep_alive;
}

void DisaggFlow::abort_on_engines() const {
  if (!prefiller_) return;  // nothing reached an engine
  SteadyClock::time_point deadline = SteadyClock::now() + ctx_.config.connect_timeout;
  send_abort_transfer(watch_->executor(), *prefiller_, engine_name("prefiller", *prefiller_), id_,
                      upstream_headers(), deadline);
  send_abort_transfer(watch_->executor(), *decoder_, engine_name("decoder", *decoder_), id_,
                      upstream_headers(), deadline);
}

Task<void> DisaggFlow::serve() {
  id_ = new_request_id();
  const OrderedJson parsed = parse_client_body(request_.body);
  check_client_object(parsed, request_.endpoint);
  const nlohmann::json body = parsed;  // the rewrites' copy: no second parse
  std::optional<BackendPool::Lease> prefiller = ctx_.prefillers.pick();
  if (!prefiller) {
    throw ProxyFailure(HttpStatus::kServiceUnavailable, ProxyErrorKind::kNoBackend,
                       fmt::format("no prefiller available: all {} failed their last connection or health probe "
                                   "(each is retried after {} ms)",
                                   ctx_.prefillers.size(), ctx_.config.backend_retry.count()));
  }
  std::optional<BackendPool::Lease> decoder = ctx_.decoders.pick();
  if (!decoder) {
    throw ProxyFailure(HttpStatus::kServiceUnavailable, ProxyErrorKind::kNoBackend,
                       fmt::format("no decoder available: all {} failed their last connection or health probe "
                                   "(each is retried after {} ms)",
                                   ctx_.decoders.size(), ctx_.config.backend_retry.count()));
  }
  const HttpEndpoint& prefill_endpoint = ctx_.config.prefillers[prefiller->index()];
  const DecoderEndpoint& decode_endpoint = ctx_.config.decoders[decoder->index()];

  // The notification may come before, during or after the prefiller's HTTP answer.
  ctx_.hub.expect(id_, [watch = watch_](const TransferOutcome& outcome) {
    net::post(watch->executor(), [watch, outcome] {
      watch->outcome = outcome;
      watch->poke();
    });
  });
  ctx_.metrics.observe(ProxyStage::kQueue, seconds_since(request_.received));
  std::optional<ProxyFailure> transfer_failed;
  const nlohmann::json prefill_body = make_prefill_body(body, request_.endpoint, id_, decode_endpoint);
  prefiller_ = &prefill_endpoint;
  decoder_ = &decode_endpoint.http;
  co_await prefill(prefill_body, prefill_endpoint, prefiller->index(),
                   prompt_ids_reusable(body, request_.endpoint),
                   first_token_reusable(body, request_.endpoint));
  if (passed_through_) co_return;
  prefiller->release();
  const std::string prefiller_name = engine_name("prefiller", prefill_endpoint);
  const std::string decoder_name = engine_name("decoder", decode_endpoint.http);
  try {
    co_await wait_for_transfer(prefiller->index(), prefiller_name, decoder_name);
  } catch (const ProxyFailure& f) {
    transfer_failed = f;
  }
  if (transfer_failed) {
    // A decoder that died fails every transfer aimed at it: find out, so that it rests.
    co_await probe_decoder(decode_endpoint.http, decoder->index());
    throw *transfer_failed;
  }
  const nlohmann::json decode_body = make_decode_body(body, id_, std::move(handover_));
  co_await decode(decode_body, decode_endpoint, decoder->index());
}

Task<void> DisaggFlow::prefill(const nlohmann::json& body, const HttpEndpoint& endpoint,
                               size_t index, bool want_prompt_ids, bool want_first_token) {
  const std::string name = engine_name("prefiller", endpoint);
  UpstreamCall call(watch_->executor(), endpoint, name);
  UpstreamGuard guard(*watch_, call);
  if (watch_->client_gone()) throw ClientLeft{};
  SteadyClock::time_point start = SteadyClock::now();
  SteadyClock::time_point deadline = start + ctx_.config.prefill_timeout;
  UpstreamResponse response;
  const std::string path = api_endpoint_path(request_.endpoint);
  const std::string text = body.dump();
  const HeaderList headers = upstream_headers();
  try {
    co_await call.connect(connect_deadline(deadline));
  } catch (const UpstreamFailure& f) {
    if (f.kind() != UpstreamFailureKind::kAborted) ctx_.prefillers.mark_failed(index);
    fail_upstream(f, ProxyErrorKind::kPrefillUnreachable, ProxyErrorKind::kPrefillFailed,
                  ProxyErrorKind::kPrefillUnreachable);
  }
  ctx_.prefillers.mark_ok(index);
  try {
    co_await call.send(http::verb::post, path, text, headers, deadline);
    response = co_await call.read_response(deadline, ctx_.config.max_body_bytes);
  } catch (const UpstreamFailure& f) {
    fail_upstream(f, ProxyErrorKind::kPrefillUnreachable, ProxyErrorKind::kPrefillFailed,
                  ProxyErrorKind::kPrefillTimeout);
  }
  ctx_.prefillers.note_answer(index);
  prefill_answered_ = SteadyClock::now();
  ctx_.metrics.observe(ProxyStage::kPrefill, seconds_since(start));
  ctx_.stats.add_prefill(seconds_since(request_.received) * 1000.0);
  if (response.status != 200) {
    co_await pass_through_error(response, name, ProxyErrorKind::kPrefillFailed);
    co_return;
  }
  if (want_prompt_ids) handover_ = handover_of(response.body, want_first_token);
}

// 4xx: the engine's own answer goes to the client; anything else non-200 is a 502.
Task<void> DisaggFlow::pass_through_error(const UpstreamResponse& response,
                                          const std::string& engine, ProxyErrorKind kind) {
  if (response.status >= 400 && response.status < 500) {
    passed_through_ = true;
    ctx_.metrics.error(ProxyErrorKind::kBadRequest);
    const std::string content_type =
        response.content_type.empty() ? "application/json" : response.content_type;
    co_await client_.write_full(response.status, content_type, response.body, request_.keep_alive);
    co_return;
  }
  throw ProxyFailure(HttpStatus::kBadGateway, kind,
                     fmt::format("{} answered {}: {}", engine, response.status,
                                 upstream_message(response)));
}

Task<void> DisaggFlow::wait_for_transfer(size_t prefiller_index, const std::string& prefiller,
                                         const std::string& decoder) {
  SteadyClock::time_point start = SteadyClock::now();
  SteadyClock::time_point deadline = start + ctx_.config.transfer_timeout;
  // A prefiller that stops answering its health probes during the wait (it died or hung after
  // its answer) will send no TransferDone: the request fails then, not at the transfer timeout.
  // One already unhealthy when the wait starts has just answered, so that verdict is stale.
  const bool was_unhealthy = ctx_.prefillers.health(prefiller_index) == EngineHealth::kUnhealthy;
  while (!watch_->outcome && !watch_->client_gone() && SteadyClock::now() < deadline) {
    if (!was_unhealthy &&
        ctx_.prefillers.health(prefiller_index) == EngineHealth::kUnhealthy) {
      throw ProxyFailure(HttpStatus::kBadGateway, ProxyErrorKind::kPrefillUnreachable,
                         fmt::format("{} stopped answering its health probes while the KV transfer "
                                     "of request {} to {} was pending",
                                     prefiller, id_, decoder));
    }
    co_await watch_->wait_wake(std::min(deadline, SteadyClock::now() + kHealthRecheck));
  }
  if (watch_->client_gone()) throw ClientLeft{};
  if (!watch_->outcome) {
    throw ProxyFailure(HttpStatus::kGatewayTimeout, ProxyErrorKind::kTransferTimeout,
                       fmt::format("the KV transfer of request {} from {} to {} did not complete "
                                   "within {} ms (no TransferDone on the proxy port)",
                                   id_, prefiller, decoder, ctx_.config.transfer_timeout.count()));
  }
  if (watch_->outcome->result == TransferResult::kAborted) {
    throw ProxyFailure(HttpStatus::kBadGateway, ProxyErrorKind::kTransferAborted,
                       fmt::format("the KV transfer of request {} from {} to {} was aborted: {}",
                                   id_, prefiller, decoder, watch_->outcome->reason));
  }
  ctx_.metrics.observe(ProxyStage::kTransfer, seconds_since(prefill_answered_));
}

Task<void> DisaggFlow::probe_decoder(const HttpEndpoint& endpoint, size_t index) {
  UpstreamCall probe(watch_->executor(), endpoint, engine_name("decoder", endpoint));
  UpstreamGuard guard(*watch_, probe);
  try {
    co_await probe.connect(SteadyClock::now() + ctx_.config.connect_timeout);
  } catch (const UpstreamFailure& f) {
    if (f.kind() == UpstreamFailureKind::kAborted) throw ClientLeft{};
    ctx_.decoders.mark_failed(index);
    log_warning("{}; it rests for {} ms", f.what(), ctx_.config.backend_retry.count());
  }
}

Task<void> DisaggFlow::decode(const nlohmann::json& body, const DecoderEndpoint& endpoint,
                              size_t index) {
  const std::string name = engine_name("decoder", endpoint.http);
  UpstreamCall call(watch_->executor(), endpoint.http, name);
  UpstreamGuard guard(*watch_, call);
  if (watch_->client_gone()) throw ClientLeft{};
  SteadyClock::time_point start = SteadyClock::now();
  auto next_deadline = [&] { return SteadyClock::now() + ctx_.config.decode_timeout; };
  UpstreamResponse header;
  const std::string path = api_endpoint_path(request_.endpoint);
  const std::string text = body.dump();
  const HeaderList headers = upstream_headers();
  try {
    co_await call.connect(connect_deadline(next_deadline()));
  } catch (const UpstreamFailure& f) {
    if (f.kind() != UpstreamFailureKind::kAborted) ctx_.decoders.mark_failed(index);
    fail_upstream(f, ProxyErrorKind::kDecodeUnreachable, ProxyErrorKind::kDecodeFailed,
                  ProxyErrorKind::kDecodeUnreachable);
  }
  ctx_.decoders.mark_ok(index);
  try {
    co_await call.send(http::verb::post, path, text, headers, next_deadline());
    header = co_await call.read_header(next_deadline());
  } catch (const UpstreamFailure& f) {
    fail_upstream(f, ProxyErrorKind::kDecodeUnreachable, ProxyErrorKind::kDecodeFailed,
                  ProxyErrorKind::kDecodeTimeout);
  }
  ctx_.decoders.note_answer(index);
  if (header.status == 200 && is_event_stream(header.content_type)) {
    co_await stream_decoder(call, index, header.content_type, start);
    co_return;
  }
  header.body = co_await read_all(call, index);
  ctx_.metrics.observe(ProxyStage::kDecodeFirstToken, seconds_since(start));
  ctx_.stats.add_end_to_end(seconds_since(request_.received) * 1000.0);
  if (header.status != 200) {
    co_await pass_through_error(header, name, ProxyErrorKind::kDecodeFailed);
    co_return;
  }
  const std::string content_type =
      header.content_type.empty() ? "application/json" : header.content_type;
  co_await client_.write_full(200, content_type, header.body, request_.keep_alive);
  answer_delivered_ = true;
}

Task<std::string> DisaggFlow::read_all(UpstreamCall& call, size_t index) {
  std::string body;
  try {
    while (auto piece = co_await call.read_body_some(SteadyClock::now() + ctx_.config.decode_timeout)) {
      ctx_.decoders.note_answer(index);
      body += *piece;
      if (body.size() > ctx_.config.max_body_bytes) {
        throw ProxyFailure(HttpStatus::kBadGateway, ProxyErrorKind::kDecodeFailed,
                           fmt::format("{}: the answer is larger than {} bytes", call.name(),
                                       ctx_.config.max_body_bytes));
      }
    }
  } catch (const UpstreamFailure& f) {
    fail_upstream(f, ProxyErrorKind::kDecodeUnreachable, ProxyErrorKind::kDecodeFailed,
                  ProxyErrorKind::kDecodeTimeout);
  }
  co_return body;
}

// SSE pass-through: each piece goes to the client as it arrives, byte for byte.
Task<void> DisaggFlow::stream_decoder(UpstreamCall& call, size_t index,
                                      const std::string& content_type,
                                      SteadyClock::time_point start) {
  co_await client_.begin_stream(200, content_type);
  bool first = true;
  try {
    while (auto piece = co_await call.read_body_some(SteadyClock::now() + ctx_.config.decode_timeout)) {
      ctx_.decoders.note_answer(index);
      if (first) {
        first = false;
        ctx_.metrics.observe(ProxyStage::kDecodeFirstToken, seconds_since(start));
        ctx_.stats.add_end_to_end(seconds_since(request_.received) * 1000.0);
      }
      co_await client_.write_piece(*piece);
      stream_tail_ += *piece;
      if (stream_tail_.size() > kStreamTailBytes) {
        stream_tail_.erase(0, stream_tail_.size() - kStreamTailBytes);
      }
      answer_delivered_ = ends_with_done_event(stream_tail_);
    }
  } catch (const UpstreamFailure& f) {
    fail_upstream(f, ProxyErrorKind::kDecodeUnreachable, ProxyErrorKind::kDecodeFailed,
                  ProxyErrorKind::kDecodeTimeout);
  }
  co_await client_.end_stream();
}

}  // namespace tandem
