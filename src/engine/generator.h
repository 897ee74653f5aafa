// Single-sequence generation: prefill a prompt, then decode one token at a time through a
// KV cache of just enough blocks. The reference path behind `tandem generate`; the batched
// serving engine (LlmEngine) must produce the same greedy tokens.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/model_backend.h"
#include "engine/sampler.h"
#include "engine/sampling_params.h"
#include "engine/stop_checker.h"
#include "tokenizer/tokenizer.h"

namespace tandem {

struct GenerationResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> generated_ids;
  std::string text;                      // detokenized output, cut at a stop string
  std::vector<SampleLogprobs> logprobs;  // one per generated token when params.logprobs
  FinishReason finish = FinishReason::kNone;
  double prefill_ms = 0;           // prompt forward pass + first sample
  double decode_tokens_per_s = 0;  // tokens after the first / their wall time
};

// Called with each piece of text as soon as it is safe to show (streaming output).
using TextCallback = std::function<void(const std::string&)>;

class Generator {
 public:
  // `tokenizer` may be null (then text stays empty and stop strings are not supported). The
  // backend (CPU or CUDA) gets a KV cache of just enough blocks for each generate() call.
  Generator(ModelBackend& model, const Tokenizer* tokenizer, ThreadPool* pool);

  // Throws tandem::Error for an empty prompt, ids out of range or a prompt past the context.
  GenerationResult generate(const std::vector<int32_t>& prompt_ids, const SamplingParams& params,
                            const TextCallback& on_text = nullptr);

 private:
  ModelBackend& model_;
  const Tokenizer* tokenizer_;
  Sampler sampler_;
};

}  // namespace tandem
