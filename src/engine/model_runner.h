// ModelRunner: turns one scheduled step into the model's flat ForwardBatch (token ids,
// positions, KV slots from the block tables, query starts, context lengths, logits rows),
// runs the ModelBackend's forward pass (CPU or CUDA), samples one token for every sequence whose
// last token was computed (its own SamplerState: penalties, RNG, logprobs) and asks its StopChecker
// whether it is done. On a backend with a device sampler (CUDA), a row whose distribution only
// the temperature shapes is picked on the device and only the other rows' logits cross to the host.
// It only reads sequences; Scheduler::update applies the results.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/model_backend.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "kv/kv_cache.h"
#include "model/forward_batch.h"

namespace tandem {

// The flat batch for `out` (one row per new token, sequences in out.seqs order); the rows of
// sequences that sample are logits_indices, in the same order.
ForwardBatch build_forward_batch(const SchedulerOutput& out, int block_size);

// What one step produced, parallel to out.seqs.
struct RunnerOutput {
  std::vector<StepToken> tokens;                     // token_id -1 where nothing was sampled
  std::vector<std::optional<SampleResult>> samples;  // logprobs when the request asked
};

// A canonical description of everything that changes a token's KV: the root of the prefix
// cache's hash chain. Two processes serving the same architecture and dtypes agree on it.
std::string model_fingerprint(const ModelConfig& config, const KvCacheShape& kv);

class ModelRunner {
 public:
  // Both must outlive the runner; `model` has its KV cache allocated.
  ModelRunner(ModelBackend& model, Sampler& sampler);

  // Runs one step. Throws tandem::Error when the model or the sampler rejects it.
  RunnerOutput run(const SchedulerOutput& out);

 private:
  // One sampled result per entry of `states` (the logits rows, in order).
  std::vector<SampleResult> run_host(const ForwardBatch& batch,
                                     std::span<SamplerState* const> states);
  std::vector<SampleResult> run_device_sampler(const ForwardBatch& batch,
                                               std::span<SamplerState* const> states);

  ModelBackend& model_;
  Sampler& sampler_;
  std::vector<float> logits_;  // (rows sampled on the host, vocab_size) reused across steps
  DevicePicks picks_;          // the device's picks, reused across steps
};

}  // namespace tandem
