// ModelRunner: ForwardBatch construction, the forward pass, batched sampling and stop checks.
#include "engine/model_runner.h"

#include <algorithm>

#include "core/error.h"
#include "engine/stop_checker.h"

namespace tandem {
namespace {

// Appends sequence `s`'s rows: positions [num_computed, num_computed + num_new).
void append_rows(const ScheduledSeq& s, int block_size, ForwardBatch& b) {
  const Sequence& seq = *s.seq;
  int begin = seq.num_computed_tokens, end = begin + s.num_new_tokens;
  TANDEM_CHECK(end <= seq.num_tokens() && size_t(end) <= seq.blocks.table.size() * block_size,
               "model runner: request {} schedules positions up to {} with {} tokens and {} "
               "blocks",
               seq.request_id, end, seq.num_tokens(), seq.blocks.table.size());
  for (int pos = begin; pos < end; ++pos) {
    b.token_ids.push_back(seq.token_ids[size_t(pos)]);
    b.positions.push_back(pos);
    int64_t block = seq.blocks.table[size_t(pos / block_size)];
    b.slot_mapping.push_back(block * block_size + pos % block_size);
  }
  b.query_start.push_back(b.query_start.back() + s.num_new_tokens);
  b.context_lens.push_back(end);
  if (s.samples) b.logits_indices.push_back(b.query_start.back() - 1);
}

}  // namespace

ForwardBatch build_forward_batch(const SchedulerOutput& out, int block_size) {
  ForwardBatch b;
  b.query_start.push_back(0);
  for (const ScheduledSeq& s : out.seqs) {
    append_rows(s, block_size, b);
    b.max_blocks_per_seq = std::max(b.max_blocks_per_seq, int32_t(s.seq->blocks.table.size()));
  }
  // (num_seqs, max_blocks_per_seq) row-major; unused entries hold block 0 and are never read.
  b.block_tables.assign(out.seqs.size() * size_t(b.max_blocks_per_seq), 0);
  for (size_t i = 0; i < out.seqs.size(); ++i) {
    const auto& table = out.seqs[i].seq->blocks.table;
    std::copy(table.begin(), table.end(), b.block_tables.begin() + i * b.max_blocks_per_seq);
  }
  return b;
}

std::string model_fingerprint(const ModelConfig& c, const KvCacheShape& kv) {
  return fmt::format(
      "model_type={};vocab={};hidden={};inter={};layers={};heads={};kv_heads={};head_dim={};"
      "max_pos={};eps={:.9g};rope_theta={:.17g};rope_scaling={};rope_factor={:.17g};"
      "rope_low={:.17g};rope_high={:.17g};rope_orig={};tied={};qkv_bias={};dtype={};"
      "kv_dtype={};block_size={}",
      c.model_type, c.vocab_size, c.hidden_size, c.intermediate_size, c.num_layers, c.num_heads,
      c.num_kv_heads, c.head_dim, c.max_position_embeddings, c.rms_norm_eps, c.rope.theta,
      int(c.rope.scaling), c.rope.factor, c.rope.low_freq_factor, c.rope.high_freq_factor,
      c.rope.original_max_position, c.tie_word_embeddings, c.qkv_bias, dtype_name(c.dtype),
      kv.dtype == DType::kF32 ? "f32" : "bf16", kv.block_size);
}

ModelRunner::ModelRunner(ModelBackend& model, Sampler& sampler)
    : model_(model), sampler_(sampler) {}

RunnerOutput ModelRunner::run(const SchedulerOutput& out) {
  ForwardBatch batch = build_forward_batch(out, model_.kv_cache_shape().block_size);
  std::vector<SamplerState*> states;  // (num sampled) parallel to logits rows
  for (const ScheduledSeq& s : out.seqs) {
    if (s.samples) states.push_back(s.seq->sampler.get());
  }
  TANDEM_CHECK(std::find(states.begin(), states.end(), nullptr) == states.end(),
               "model runner: a sampling sequence has no sampler state");
  std::vector<SampleResult> sampled =
      model_.has_device_sampler() ? run_device_sampler(batch, states) : run_host(batch, states);

  RunnerOutput result;
  result.tokens.resize(out.seqs.size());
  result.samples.resize(out.seqs.size());
  size_t row = 0;
  for (size_t i = 0; i < out.seqs.size(); ++i) {
    if (!out.seqs[i].samples) continue;
    SampleResult& r = sampled[row++];
    result.tokens[i] = {r.token_id, out.seqs[i].seq->stop->append(r.token_id, "")};
    result.samples[i] = std::move(r);
  }
  return result;
}

std::vector<SampleResult> ModelRunner::run_host(const ForwardBatch& batch,
                                                std::span<SamplerState* const> states) {
  const size_t vocab = size_t(model_.config().vocab_size);
  logits_.resize(states.size() * vocab);  // (num sampled, vocab)
  model_.forward(batch, logits_.data());
  return sampler_.sample_batch(logits_, vocab, states);
}

// Rows whose distribution only the temperature shapes are picked on the device; the others
// cross to the host sampler.
std::vector<SampleResult> ModelRunner::run_device_sampler(const ForwardBatch& batch,
                                                          std::span<SamplerState* const> states) {
  const size_t vocab = size_t(model_.config().vocab_size);
  std::vector<DeviceDraw> draws(states.size());
  std::vector<int32_t> host_rows;
  std::vector<SamplerState*> host_states;
  for (size_t i = 0; i < states.size(); ++i) {
    if (std::optional<DeviceDraw> draw = states[i]->device_draw()) {
      draws[i] = *draw;
      continue;
    }
    host_rows.push_back(int32_t(i));
    host_states.push_back(states[i]);
  }
  logits_.resize(host_rows.size() * vocab);
  model_.forward_sampled(batch, draws, host_rows, logits_.data(), picks_);
  TANDEM_CHECK(picks_.ids.size() == states.size() && picks_.logprobs.size() == states.size() &&
                   picks_.invalid.size() == states.size(),
               "model runner: the backend returned {} picks for {} rows", picks_.ids.size(),
               states.size());
  std::vector<SampleResult> host = sampler_.sample_batch(logits_, vocab, host_states);
  std::vector<SampleResult> results(states.size());
  for (size_t i = 0, h = 0; i < states.size(); ++i) {
    if (h < host_rows.size() && host_rows[h] == int32_t(i)) {
      results[i] = std::move(host[h++]);
      continue;
    }
    TANDEM_CHECK(!picks_.invalid[i],
                 "sampler: the logits row holds NaN or +inf, or no value above -inf");
    const int32_t id = picks_.ids[i];
    TANDEM_CHECK(id >= 0 && size_t(id) < vocab, "model runner: the device picked token {} of {}",
                 id, vocab);
    results[i].token_id = id;
    if (states[i]->params().logprobs) {
      // only greedy rows ask for logprobs here (SamplerState::device_draw): the argmax ranks 1
      results[i].logprobs = SampleLogprobs{.logprob = picks_.logprobs[i], .rank = 1, .top = {}};
    }
    states[i]->append_output_token(id);
  }
  return results;
}

}  // namespace tandem
