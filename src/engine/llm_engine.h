// The serving engine: one inference thread that loops schedule -> run model -> sample -> emit,
// fed by a task queue (add / abort) that any thread may push to. HTTP threads never touch the
// model or the KV cache; they submit EngineRequests and read their RequestStream.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "engine/engine_config.h"
#include "engine/kv_connector.h"
#include "engine/request.h"

namespace tandem {

// Counters and gauges the server exports on /metrics (a snapshot).
struct EngineStats {
  int num_running = 0;
  int num_waiting = 0;
  int kv_blocks_total = 0;
  int kv_blocks_used = 0;
  uint64_t prefix_cache_queries = 0;  // prompt tokens looked up in the prefix cache
  uint64_t prefix_cache_hits = 0;     // of which found
  uint64_t prompt_tokens = 0;         // total prompt tokens processed
  uint64_t generation_tokens = 0;     // total tokens generated
  uint64_t num_preemptions = 0;
  uint64_t prompt_tokens_computed = 0;  // prompt tokens run through the model (recompute too)
  uint64_t steps = 0;                   // steps that ran the model
  double step_seconds = 0.0;     // their wall time: schedule, forward, sample, update, outputs
  double forward_seconds = 0.0;  // of which the forward pass and sampling (ModelRunner::run)
  double device_seconds = 0.0;   // the device's span of those forward passes (0 on the CPU)
  KvConnectorStats kv_transfer;  // zeros without a KV connector
};

class LlmEngine {
 public:
  // Loads the model and allocates the KV cache; throws tandem::Error on bad config/model.
  explicit LlmEngine(const EngineConfig& config);
  ~LlmEngine();  // stops the loop, finishes every live request with kAbort

  void start();  // starts the engine thread
  void stop();

  // Thread-safe. The stream receives outputs until one with finish != kNone.
  void add_request(EngineRequest request, std::shared_ptr<RequestStream> stream);
  // Thread-safe; the request is freed within one engine step (its stream gets kAbort).
  void abort_request(const std::string& request_id);
  // Thread-safe: transfer `transfer_id` (kv_transfer_params.disagg_spec.req_id) is abandoned by
  // the proxy (its client left, or its transfer failed there). Aborts every request carrying it
  // and drops its KV transfer.
  void abort_transfer(const std::string& transfer_id);

  EngineStats stats() const;
  const EngineConfig& config() const;
  const struct ModelConfig& model_config() const;
  // The KV connector (disaggregated prefill and/or the KV tiers), or nullptr.
  KvConnector* kv_connector() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem
