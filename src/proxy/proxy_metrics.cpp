// ProxyMetrics: the proxy's Prometheus families.
#include "proxy/proxy_metrics.h"

namespace tandem {

const char* proxy_stage_name(ProxyStage stage) {
  switch (stage) {
    case ProxyStage::kQueue: return "queue";
    case ProxyStage::kPrefill: return "prefill";
    case ProxyStage::kTransfer: return "transfer";
    case ProxyStage::kDecodeFirstToken: return "decode_first_token";
  }
  return "unknown";
}

const char* proxy_error_kind_name(ProxyErrorKind kind) {
  switch (kind) {
    case ProxyErrorKind::kBadRequest: return "bad_request";
    case ProxyErrorKind::kNoBackend: return "no_backend";
    case ProxyErrorKind::kPrefillUnreachable: return "prefill_unreachable";
    case ProxyErrorKind::kPrefillFailed: return "prefill_failed";
    case ProxyErrorKind::kPrefillTimeout: return "prefill_timeout";
    case ProxyErrorKind::kTransferAborted: return "transfer_aborted";
    case ProxyErrorKind::kTransferTimeout: return "transfer_timeout";
    case ProxyErrorKind::kDecodeUnreachable: return "decode_unreachable";
    case ProxyErrorKind::kDecodeFailed: return "decode_failed";
    case ProxyErrorKind::kDecodeTimeout: return "decode_timeout";
    case ProxyErrorKind::kClientDisconnected: return "client_disconnected";
  }
  return "unknown";
}

ProxyMetrics::ProxyMetrics()
    : requests_(registry_.add("tandem:proxy_requests_total",
                              "Requests received, by endpoint.", MetricType::kCounter)),
      running_(registry_.add("tandem:proxy_requests_running",
                             "Disaggregated requests in flight.", MetricType::kGauge)),
      errors_(registry_.add("tandem:proxy_errors_total", "Failed requests, by kind.",
                            MetricType::kCounter)),
      stages_(registry_.add("tandem:proxy_stage_latency_seconds",
                            "Latency of each stage of a disaggregated request.",
                            MetricType::kHistogram,
                            {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                             10, 30, 60})) {
  running_.gauge({}).set(0);
}

void ProxyMetrics::request_started(const std::string& endpoint) {
  requests_.counter({{"endpoint", endpoint}}).inc();
  running_.gauge({}).add(1);
}

void ProxyMetrics::request_finished() { running_.gauge({}).add(-1); }

void ProxyMetrics::error(ProxyErrorKind kind) {
  errors_.counter({{"kind", proxy_error_kind_name(kind)}}).inc();
}

void ProxyMetrics::observe(ProxyStage stage, double seconds) {
  stages_.histogram({{"stage", proxy_stage_name(stage)}}).observe(seconds);
}

}  // namespace tandem
