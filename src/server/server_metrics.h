// ServerMetrics: the `tandem:` metric set served on /metrics, named after vLLM's `vllm:` ones.
// Engine gauges and totals are refreshed from an EngineStats snapshot at scrape time; the
// per-request histograms (TTFT, inter-token latency, end-to-end latency, queue time, token
// counts) are observed by the handlers as requests finish.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "engine/llm_engine.h"
#include "engine/request.h"
#include "server/metrics.h"

namespace tandem {

// What one finished (sub-)request contributes to the histograms; times in seconds.
struct RequestTimings {
  std::optional<double> queue_time_s;  // arrival -> first scheduled (when the engine says)
  double time_to_first_token_s = 0.0;  // arrival -> first token
  double e2e_latency_s = 0.0;          // arrival -> finish
  std::vector<double> inter_token_s;   // (num_tokens - 1) gaps between consecutive tokens
  int prompt_tokens = 0;
  int generation_tokens = 0;
  FinishReason finish = FinishReason::kNone;
};

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);

  void observe_request(const RequestTimings& timings);
  // Refreshes the engine-side gauges/totals, then renders the whole registry.
  [[nodiscard]] std::string render(const EngineStats& stats);

 private:
  void render_tier(const char* tier, const ChunkTierStats& s);

  Labels labels_;  // {model_name}
  MetricsRegistry registry_;
  MetricFamily &running_, &waiting_, &blocks_used_, &blocks_total_, &cache_usage_;
  MetricFamily &prefix_queries_, &prefix_hits_, &prompt_tokens_, &generation_tokens_;
  MetricFamily &preemptions_, &request_success_;
  MetricFamily &engine_steps_, &engine_step_seconds_, &model_forward_seconds_,
      &model_device_seconds_;
  // Disaggregated prefill (zeros without a KV connector).
  MetricFamily &pd_received_tokens_, &pd_computed_tokens_, &pd_buffer_bytes_,
      &pd_transfers_received_;
  MetricFamily &pd_transfers_sent_, &pd_failures_, &pd_bytes_sent_;
  MetricFamily &pd_transfer_seconds_, &pd_write_seconds_;
  // The CPU and disk KV tiers, one series per enabled tier (label tier="cpu"|"disk").
  MetricFamily &tier_lookups_, &tier_hit_tokens_, &tier_stored_tokens_, &tier_evictions_;
  MetricFamily &tier_bytes_used_, &tier_bytes_limit_, &tier_corrupt_, &tier_dropped_writes_;
  MetricFamily &ttft_, &itl_, &e2e_, &queue_time_, &request_prompt_tokens_,
      &request_generation_tokens_;
};

}  // namespace tandem
