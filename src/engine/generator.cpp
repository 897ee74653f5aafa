#include "engine/generator.h"

#include <chrono>
#include <memory>
#include <optional>

#include "core/error.h"
#include "kv/kv_cache.h"
#include "model/forward_batch.h"
#include "tokenizer/incremental_detokenizer.h"

namespace tandem {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A batch of one sequence whose blocks are 0, 1, 2, ... in order: tokens [start, start+n).
ForwardBatch single_sequence_batch(const std::vector<int32_t>& tokens, int32_t start,
                                   int block_size, int32_t max_blocks) {
  ForwardBatch b;
  b.token_ids.assign(tokens.begin() + start, tokens.end());
  for (int32_t p = start; p < int32_t(tokens.size()); ++p) {
    b.positions.push_back(p);
    b.slot_mapping.push_back(p);  // block p / bs, offset p % bs: slot p with identity blocks
  }
  b.query_start = {0, int32_t(b.token_ids.size())};
  b.context_lens = {int32_t(tokens.size())};
  b.max_blocks_per_seq = max_blocks;
  for (int32_t i = 0; i < max_blocks; ++i) b.block_tables.push_back(i);
  b.logits_indices = {int32_t(b.token_ids.size()) - 1};
  (void)block_size;
  return b;
}

}  // namespace

Generator::Generator(ModelBackend& model, const Tokenizer* tokenizer, ThreadPool* pool)
    : model_(model), tokenizer_(tokenizer), sampler_(pool) {}

GenerationResult Generator::generate(const std::vector<int32_t>& prompt_ids,
                                     const SamplingParams& params, const TextCallback& on_text) {
  const ModelConfig& cfg = model_.config();
  TANDEM_CHECK(!prompt_ids.empty(), "the prompt is empty");
  const int context = cfg.max_position_embeddings;
  TANDEM_CHECK(int(prompt_ids.size()) < context,
               "the prompt has {} tokens; the model's context is {} tokens", prompt_ids.size(),
               context);
  TANDEM_CHECK(params.stop.empty() || tokenizer_, "stop strings need a tokenizer");
  const int budget = context - int(prompt_ids.size());
  int max_new = params.max_tokens ? std::min(*params.max_tokens, budget) : budget;
  const int block_size = kDefaultBlockSize;
  const int32_t max_blocks = int32_t((prompt_ids.size() + max_new + block_size - 1) / block_size);
  model_.allocate_kv_cache(max_blocks, block_size);

  std::vector<int32_t> eos(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end());
  SamplerState state(params, prompt_ids, eos);
  StopChecker stop(params, eos, budget);
  std::optional<IncrementalDetokenizer> detok;
  if (tokenizer_) {
    std::vector<int> context_ids(prompt_ids.begin(), prompt_ids.end());
    detok.emplace(*tokenizer_, /*skip_special_tokens=*/true, context_ids);
  }

  GenerationResult result;
  result.prompt_ids = prompt_ids;
  std::vector<int32_t> tokens = prompt_ids;
  std::vector<float> logits(size_t(cfg.vocab_size));
  int32_t computed = 0;
  auto start = Clock::now();
  Clock::time_point first_token_time;
  std::string tail;
  while (!stop.finished()) {
    ForwardBatch batch = single_sequence_batch(tokens, computed, block_size, max_blocks);
    model_.forward(batch, logits.data());
    computed = int32_t(tokens.size());
    SampleResult s = sampler_.sample(logits, state);
    if (result.generated_ids.empty()) {
      result.prefill_ms = ms_since(start);
      first_token_time = Clock::now();
    }
    tokens.push_back(s.token_id);
    result.generated_ids.push_back(s.token_id);
    if (s.logprobs) result.logprobs.push_back(*s.logprobs);
    std::string piece = detok ? detok->push(s.token_id) : std::string();
    stop.append(s.token_id, piece);
    std::string delta = on_text ? stop.take_stream_delta() : std::string();
    if (stop.finished() && detok && stop.finish_reason() != FinishReason::kStop) {
      tail = detok->flush();  // bytes held back at a length limit (decode() shows them too)
      delta += tail;
    }
    if (on_text && !delta.empty()) on_text(delta);
  }
  int decoded = int(result.generated_ids.size()) - 1;
  double decode_ms = ms_since(first_token_time);
  result.decode_tokens_per_s = decoded > 0 && decode_ms > 0 ? decoded * 1000.0 / decode_ms : 0;
  result.text = stop.text() + tail;
  result.finish = stop.finish_reason();
  return result;
}

}  // namespace tandem
