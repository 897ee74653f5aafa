// ProxyMetrics: what `tandem proxy` serves on /metrics (Prometheus text): requests by endpoint,
// requests in flight, errors by kind, and the latency of each stage of a disaggregated request —
// queue (request in -> prefill sent), prefill (the prefiller's HTTP call), transfer (prefiller
// answered -> TransferDone), decode_first_token (decoder request sent -> first byte back).
#pragma once
#include <string>

#include "server/metrics.h"

namespace tandem {

enum class ProxyStage { kQueue, kPrefill, kTransfer, kDecodeFirstToken };

// Why a request failed; the label of tandem:proxy_errors_total.
enum class ProxyErrorKind {
  kBadRequest,          // the client's body (400 from the proxy or passed through)
  kNoBackend,           // 503: every prefiller or decoder is resting after failures
  kPrefillUnreachable,  // 502
  kPrefillFailed,       // 502: a 5xx or a broken answer
  kPrefillTimeout,      // 504
  kTransferAborted,     // 502
  kTransferTimeout,     // 504
  kDecodeUnreachable,   // 502
  kDecodeFailed,        // 502 (or an error event mid-stream)
  kDecodeTimeout,       // 504 (or an error event mid-stream)
  kClientDisconnected,  // the client left; its upstream calls were closed
};

const char* proxy_stage_name(ProxyStage stage);
const char* proxy_error_kind_name(ProxyErrorKind kind);

class ProxyMetrics {
 public:
  ProxyMetrics();
  void request_started(const std::string& endpoint);
  void request_finished();
  void error(ProxyErrorKind kind);
  void observe(ProxyStage stage, double seconds);
  [[nodiscard]] std::string render() const { return registry_.render(); }

 private:
  MetricsRegistry registry_;
  MetricFamily& requests_;
  MetricFamily& running_;
  MetricFamily& errors_;
  MetricFamily& stages_;
};

}  // namespace tandem
