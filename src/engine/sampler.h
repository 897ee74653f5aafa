// Sampler: picks the next token from one f32 logits row per sequence, with vLLM's processing
// order: repetition penalty, frequency and presence penalties, the min_tokens mask, then
// temperature, top-k, top-p and min-p, and a draw from the per-sequence RNG (argmax when greedy).
// Per-sequence state (params, RNG, token history) lives in SamplerState; the Sampler itself
// only holds scratch buffers and can process a whole batch of rows, optionally on a ThreadPool.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/thread_pool.h"
#include "engine/sampling_params.h"
#include "model/device_sampling.h"

namespace tandem {

// One sequence's sampling state: its params, its RNG and the tokens the penalties look at.
class SamplerState {
 public:
  // Validates `params`. prompt_token_ids feed the repetition penalty; eos_token_ids (the
  // model's, from its config) are masked together with stop_token_ids until min_tokens.
  SamplerState(SamplingParams params, std::span<const int32_t> prompt_token_ids,
               std::span<const int32_t> eos_token_ids);

  const SamplingParams& params() const { return params_; }
  int num_output_tokens() const { return num_output_tokens_; }
  // How a device can pick the next token (ModelBackend::forward_sampled) when the logits need no
  // per-sequence history: no penalties, no min_tokens mask in force, and logprobs (if asked) only
  // for a greedy token. Greedy: temperature 0. Else temperature, top-k, top-p and min-p with the
  // uniform number the host sampler would take from this sequence's RNG (taken now).
  // nullopt: the host sampler must see the logits. The caller records the picked token with
  // append_output_token.
  std::optional<DeviceDraw> device_draw();

  // Records a generated token. Sampler::sample does this for the tokens it samples; call it
  // for tokens produced elsewhere (e.g. the first token handed over by a prefill instance).
  void append_output_token(int32_t token_id);
  // Records a token sampled by another instance from the same seed (the prefiller's first
  // token): as append_output_token, and unless greedy it takes the one uniform number that
  // sampling took (as device_draw does), so the tokens after it are the ones one instance draws.
  void append_handed_over_token(int32_t token_id);

 private:
  friend class Sampler;
  friend void apply_penalties(std::span<float> logits, const SamplerState& state);
  friend void apply_min_tokens_mask(std::span<float> logits, const SamplerState& state);

  SamplingParams params_;
  std::mt19937_64 rng_;  // seeded from params.seed, else from a global random source
  std::unordered_set<int32_t> repetition_tokens_;       // prompt ∪ output (if penalty != 1)
  std::unordered_map<int32_t, int32_t> output_counts_;  // token id -> count in the output
  std::vector<int32_t> min_tokens_stop_ids_;            // EOS ids + stop_token_ids, masked early
  int num_output_tokens_ = 0;
};

struct TopLogprob {
  int32_t token_id = -1;
  float logprob = 0.0f;
};

// Log-probabilities under the RAW logits (log-softmax before penalties and temperature).
struct SampleLogprobs {
  float logprob = 0.0f;         // of the sampled token
  int32_t rank = 0;             // 1 + the number of tokens with a higher raw logit
  std::vector<TopLogprob> top;  // params.logprobs entries, most likely first (ties: low id)
};

struct SampleResult {
  int32_t token_id = -1;
  std::optional<SampleLogprobs> logprobs;  // set when params.logprobs is set
};

// A token and its probability in the distribution the sampler draws from.
struct TokenProb {
  int32_t token_id = -1;
  double prob = 0.0;
};

// The processing stages, exposed as the CPU reference (for a GPU sampler) and for tests.
// logits: [vocab] f32, modified in place. Throws tandem::Error for a history token >= vocab.
// Repetition penalty over prompt+output tokens (positive / p, negative * p); then
// frequency (* count) and presence (once) penalties over output tokens.
void apply_penalties(std::span<float> logits, const SamplerState& state);
// Sets EOS and stop_token_ids to -inf while fewer than min_tokens tokens were generated.
void apply_min_tokens_mask(std::span<float> logits, const SamplerState& state);

class Sampler {
 public:
  // pool: spreads sample_batch rows over its threads; nullptr runs them on the caller.
  explicit Sampler(ThreadPool* pool = nullptr);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // logits: [vocab] raw f32 logits of one sequence. Draws a token with `state`'s RNG and
  // records it in `state`. Throws tandem::Error for NaN/+inf logits or a bad history token.
  SampleResult sample(std::span<const float> logits, SamplerState& state);

  // logits: [states.size(), vocab_size] row-major; row i belongs to *states[i] (all distinct).
  std::vector<SampleResult> sample_batch(std::span<const float> logits, size_t vocab_size,
                                         std::span<SamplerState* const> states);

  // The distribution sample() would draw from (after every stage), most likely first; one
  // token with prob 1 when greedy. Does not touch the RNG or the history.
  std::vector<TokenProb> distribution(std::span<const float> logits, const SamplerState& state);

  struct Workspace;  // scratch for one row (defined in sampler.cpp)

 private:
  std::unique_ptr<Workspace> acquire_workspace();
  void release_workspace(std::unique_ptr<Workspace> workspace);

  ThreadPool* pool_;
  std::mutex mutex_;                                         // guards free_workspaces_
  std::vector<std::unique_ptr<Workspace>> free_workspaces_;  // reused across calls
};

}  // namespace tandem
