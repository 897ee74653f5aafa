// DisaggFlow: one /v1/completions or /v1/chat/completions request through the disaggregated
// pipeline (the interface of issue 4): pick a prefiller and a decoder; send the prefiller the
// request with max_tokens 1 and disagg_spec naming the decoder; wait for both its 200 and the
// TransferDone for the request id (an Abort or a timeout fails the request); then send the
// decoder the original request and pass its answer through — SSE piece by piece, or whole.
// Failures become OpenAI-style errors: the prefiller's 4xx passed through, 502 for an
// unreachable/failing/aborting engine, 504 for a timeout, 503 when no engine is available; a
// decoder lost mid-stream ends the stream with an error event. A client that leaves at any phase
// closes the upstream call in progress and is reported to both engines (send_abort_transfer).
#pragma once
#include <memory>
#include <string>

#include "proxy/async_io.h"
#include "proxy/backend_pool.h"
#include "proxy/client_watch.h"
#include "proxy/client_writer.h"
#include "proxy/proxy_config.h"
#include "proxy/proxy_metrics.h"
#include "proxy/request_rewrite.h"
#include "proxy/transfer_notifications.h"
#include "proxy/ttft_stats.h"

namespace tandem {

// What every request shares (owned by ProxyServer).
struct ProxyContext {
  ProxyContext(const ProxyConfig& c, BackendPool& p, BackendPool& d, NotificationHub& h,
               ProxyMetrics& m, TtftStats& s)
      : config(c), prefillers(p), decoders(d), hub(h), metrics(m), stats(s) {}
  const ProxyConfig& config;
  BackendPool& prefillers;
  BackendPool& decoders;
  NotificationHub& hub;
  ProxyMetrics& metrics;
  TtftStats& stats;
};

// A request that failed at the proxy: the error for the client and its metrics label.
class ProxyFailure : public ApiError {
 public:
  ProxyFailure(HttpStatus status, ProxyErrorKind kind, const std::string& message)
      : ApiError(status, message), kind_(kind) {}
  ProxyErrorKind kind() const { return kind_; }

 private:
  ProxyErrorKind kind_;
};

struct ClientRequest {
  ApiEndpoint endpoint = ApiEndpoint::kCompletions;
  std::string body;
  std::string authorization;  // the client's Authorization header ("" if none)
  bool keep_alive = true;
  SteadyClock::time_point received;
};

class DisaggFlow {
 public:
  DisaggFlow(ProxyContext& ctx, ClientRequest request, ClientWriter& client,
             std::shared_ptr<ClientWatch> watch);
  // Serves the request; never throws. Returns whether the client connection may be reused.
  Task<bool> run();

 private:
  Task<void> serve();
  // `want_prompt_ids`: the client's prompt may be replaced by the prefiller's prompt ids
  // (prompt_ids_reusable); `want_first_token`: the decoder may also start from the prefiller's
  // token (first_token_reusable). What the answer gives lands in handover_.
  Task<void> prefill(const nlohmann::json& body, const HttpEndpoint& prefiller, size_t index,
                     bool want_prompt_ids, bool want_first_token);
  Task<void> wait_for_transfer(size_t prefiller_index, const std::string& prefiller,
                               const std::string& decoder);
  Task<void> decode(const nlohmann::json& body, const DecoderEndpoint& decoder, size_t index);
  // After a failed transfer: a decoder whose port refuses connections rests (mark_failed).
  Task<void> probe_decoder(const HttpEndpoint& decoder, size_t index);
  // `index`: the decoder's; `start`: when the decoder request began (its decode_first_token
  // stage runs from there).
  Task<void> stream_decoder(UpstreamCall& call, size_t index, const std::string& content_type,
                            SteadyClock::time_point start);
  Task<std::string> read_all(UpstreamCall& call, size_t index);
  Task<void> pass_through_error(const UpstreamResponse& response, const std::string& engine,
                                ProxyErrorKind kind);
  HeaderList upstream_headers() const;
  [[noreturn]] void fail_upstream(const UpstreamFailure& failure, ProxyErrorKind unreachable,
                                  ProxyErrorKind broken, ProxyErrorKind timeout);
  SteadyClock::time_point connect_deadline(SteadyClock::time_point call_deadline) const;
  // The client left, or the request failed, after the prefill went out: both engines are told
  // to drop the request.
  void abort_on_engines() const;

  ProxyContext& ctx_;
  ClientRequest request_;
  ClientWriter& client_;
  std::shared_ptr<ClientWatch> watch_;
  std::string id_;
  bool passed_through_ = false;  // an engine's own error answer went to the client
  // The client has the decoder's whole answer (a JSON body, or a stream through its
  // `data: [DONE]` event); the last bytes of the stream so far, to find that event.
  bool answer_delivered_ = false;
  static constexpr size_t kStreamTailBytes = 32;
  std::string stream_tail_;
  SteadyClock::time_point prefill_answered_;
  PrefillHandover handover_;  // what the decoder takes over from the prefiller's answer
  // The engines of the request, once the prefill has gone out (then a client who leaves is
  // reported to both); owned by the config.
  const HttpEndpoint* prefiller_ = nullptr;
  const HttpEndpoint* decoder_ = nullptr;
};

}  // namespace tandem
