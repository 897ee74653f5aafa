// LlamaModel: weight mapping, batch validation and the layer loop. Every op is a CPU kernel from
// kernels/cpu; this file only wires them in the Hugging Face Llama order:
//   h = embed(ids); per layer: h += o(attn(rope(q(n1(h))), rope(k(n1(h))), v(n1(h))));
//   h += down(silu(gate(n2(h))) * up(n2(h))); logits = lm_head(norm(h)).
// When only each sequence's last token is sampled, the last layer finishes those rows alone
// (sampled_rows_batch): a prompt's other rows only had to leave their K/V in the cache.
#include "model/llama_model.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/silu_mul.h"
#include "kernels/cpu/store_kv.h"
#include "model/sampled_rows.h"

namespace tandem {
namespace {

cpu::MatmulWeight with_bias(cpu::MatmulWeight w, const std::vector<float>& bias) {
  w.bias = bias.empty() ? nullptr : bias.data();
  return w;
}

cpu::MatmulWeight linear_weight(const WeightStore& ws, const std::string& name, int64_t out,
                                int64_t in) {
  const TensorRef& t = ws.get(name, {out, in});
  return {t.data, t.dtype, out, in, nullptr};
}

// A 1-D tensor (norm weight or bias) copied to f32: (n).
std::vector<float> vector_f32(const WeightStore& ws, const std::string& name, int64_t n) {
  const TensorRef& t = ws.get(name, {n});
  std::vector<float> v(static_cast<size_t>(n));
  convert_to_f32(t.dtype, t.data, v.data(), v.size());
  return v;
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  std::vector<float> inv = cpu::rope_default_inv_freq(c.head_dim, c.rope.theta);
  if (c.rope.scaling == RopeScalingType::kLinear) cpu::rope_scale_linear(inv, c.rope.factor);
  if (c.rope.scaling == RopeScalingType::kLlama3) {
    cpu::rope_scale_llama3(inv, {c.rope.factor, c.rope.low_freq_factor, c.rope.high_freq_factor,
                                 c.rope.original_max_position});
  }
  return inv;
}

// Which attention projections carry a bias, as transformers builds each family: Llama's
// attention_bias puts one on q, k, v and o; Qwen2 always has q, k, v biases and none on o;
// Mistral has none.
struct AttentionBiases {
  bool qkv = false;
  bool o = false;
};
AttentionBiases attention_biases(const ModelConfig& c) {
  if (c.model_type == "qwen2") return {true, false};
  if (c.model_type == "llama") return {c.qkv_bias, c.qkv_bias};
  return {};
}

// h (n) += delta (n)
void add_in_place(float* h, const float* delta, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] += delta[i];
}

}  // namespace

namespace {
// Reads the config before the weights, so a bad directory is reported by its config error.
std::pair<ModelConfig, WeightStore> load_checkpoint(const std::filesystem::path& dir) {
  ModelConfig config = load_model_config(dir);
  return {std::move(config), WeightStore::open(dir)};
}
}  // namespace

LlamaModel::LlamaModel(const std::filesystem::path& dir, ThreadPool* pool)
    : LlamaModel(load_checkpoint(dir), pool) {}

LlamaModel::LlamaModel(std::pair<ModelConfig, WeightStore> checkpoint, ThreadPool* pool)
    : LlamaModel(std::move(checkpoint.first), std::move(checkpoint.second), pool) {}

LlamaModel::LlamaModel(ModelConfig config, WeightStore weights, ThreadPool* pool)
    : config_(std::move(config)), weights_(std::move(weights)), pool_(pool) {
  TANDEM_CHECK(config_.model_type == "llama" || config_.model_type == "mistral" ||
                   config_.model_type == "qwen2",
               "LlamaModel: unsupported model_type '{}'", config_.model_type);
  load_weights();
  inv_freq_ = rope_inv_freq(config_);
}

void LlamaModel::load_weights() {
  const int64_t vocab = config_.vocab_size, hidden = config_.hidden_size;
  embed_ = &weights_.get("model.embed_tokens.weight", {vocab, hidden});
  layers_.clear();
  for (int i = 0; i < config_.num_layers; ++i) layers_.push_back(load_layer(i));
  final_norm_ = vector_f32(weights_, "model.norm.weight", hidden);
  if (config_.tie_word_embeddings) {
    lm_head_ = {embed_->data, embed_->dtype, vocab, hidden, nullptr};
  } else {
    lm_head_ = linear_weight(weights_, "lm_head.weight", vocab, hidden);
  }
}

LlamaModel::Layer LlamaModel::load_layer(int index) const {
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size;
  const int64_t q_dim = int64_t(c.num_heads) * c.head_dim,
                kv_dim = int64_t(c.num_kv_heads) * c.head_dim;
  const std::string p = "model.layers." + std::to_string(index) + ".";
  Layer l;
  l.input_norm = vector_f32(weights_, p + "input_layernorm.weight", hidden);
  l.q = linear_weight(weights_, p + "self_attn.q_proj.weight", q_dim, hidden);
  l.k = linear_weight(weights_, p + "self_attn.k_proj.weight", kv_dim, hidden);
  l.v = linear_weight(weights_, p + "self_attn.v_proj.weight", kv_dim, hidden);
  l.o = linear_weight(weights_, p + "self_attn.o_proj.weight", hidden, q_dim);
  const AttentionBiases biases = attention_biases(c);
  if (biases.qkv) {
    l.q_bias = vector_f32(weights_, p + "self_attn.q_proj.bias", q_dim);
    l.k_bias = vector_f32(weights_, p + "self_attn.k_proj.bias", kv_dim);
    l.v_bias = vector_f32(weights_, p + "self_attn.v_proj.bias", kv_dim);
  }
  if (biases.o) l.o_bias = vector_f32(weights_, p + "self_attn.o_proj.bias", hidden);
  l.post_norm = vector_f32(weights_, p + "post_attention_layernorm.weight", hidden);
  l.gate = linear_weight(weights_, p + "mlp.gate_proj.weight", inter, hidden);
  l.up = linear_weight(weights_, p + "mlp.up_proj.weight", inter, hidden);
  l.down = linear_weight(weights_, p + "mlp.down_proj.weight", hidden, inter);
  return l;
}

KvCacheShape LlamaModel::kv_cache_shape(int64_t num_blocks, int block_size) const {
  return {config_.num_layers, num_blocks, block_size, config_.num_kv_heads, config_.head_dim};
}

void LlamaModel::validate(const ForwardBatch& b, const KvCache& kv) const {
  const KvCacheShape& shape = kv.shape();
  TANDEM_CHECK(shape == kv_cache_shape(shape.num_blocks, shape.block_size),
               "forward: KV cache has {} layers, {} kv heads, head_dim {}; the model needs {}, {}, "
               "{}",
               shape.num_layers, shape.num_kv_heads, shape.head_dim, config_.num_layers,
               config_.num_kv_heads, config_.head_dim);
  validate_forward_batch(b, config_, shape);
}

void LlamaModel::resize_scratch(int64_t n, int64_t num_logits) {
  const ModelConfig& c = config_;
  const auto size = [](int64_t rows, int64_t cols) { return static_cast<size_t>(rows * cols); };
  scratch_.hidden.resize(size(n, c.hidden_size));
  scratch_.normed.resize(size(n, c.hidden_size));
  scratch_.q.resize(size(n, int64_t(c.num_heads) * c.head_dim));
  scratch_.k.resize(size(n, int64_t(c.num_kv_heads) * c.head_dim));
  scratch_.v.resize(size(n, int64_t(c.num_kv_heads) * c.head_dim));
  scratch_.attn.resize(size(n, int64_t(c.num_heads) * c.head_dim));
  scratch_.proj.resize(size(n, c.hidden_size));
  scratch_.gate.resize(size(n, c.intermediate_size));
  scratch_.up.resize(size(n, c.intermediate_size));
  scratch_.last.resize(size(num_logits, c.hidden_size));
}

void LlamaModel::forward(const ForwardBatch& batch, KvCache& kv, float* logits) {
  validate(batch, kv);
  const int64_t n = batch.num_tokens();
  resize_scratch(n, int64_t(batch.logits_indices.size()));
  cpu::embedding(embed_->data, embed_->dtype, config_.vocab_size, config_.hidden_size,
                 batch.token_ids.data(), n, scratch_.hidden.data());
  const std::optional<ForwardBatch> tail = sampled_rows_batch(batch);
  const int last = config_.num_layers - 1;
  for (int layer = 0; layer < last; ++layer) {
    project_and_store(layer, batch, kv);
    attend(layer, batch, kv);
    mlp_block(layer, n);
  }
  if (tail) {
    last_layer_for_sampled_rows(batch, *tail, kv);
    compute_logits(*tail, logits);
    return;
  }
  project_and_store(last, batch, kv);
  attend(last, batch, kv);
  mlp_block(last, n);
  compute_logits(batch, logits);
}

// Every row's K/V goes into the cache; then the sampled rows' queries and residual rows move to
// the front (row i from row logits_indices[i] >= i, in increasing order, so no source is
// overwritten before it is read) and only they go on.
void LlamaModel::last_layer_for_sampled_rows(const ForwardBatch& batch, const ForwardBatch& tail,
                                             KvCache& kv) {
  const int last = config_.num_layers - 1;
  project_and_store(last, batch, kv);
  const int64_t m = tail.num_tokens();
  const int64_t hidden = config_.hidden_size, q_dim = int64_t(config_.num_heads) * config_.head_dim;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t row = batch.logits_indices[size_t(i)];
    if (row == i) continue;
    std::copy_n(scratch_.q.begin() + row * q_dim, q_dim, scratch_.q.begin() + i * q_dim);
    std::copy_n(scratch_.hidden.begin() + row * hidden, hidden,
                scratch_.hidden.begin() + i * hidden);
  }
  if (m == 0) return;
  attend(last, tail, kv);
  mlp_block(last, m);
}

cpu::PagedAttentionParams LlamaModel::attention_params(const ForwardBatch& b, KvCache& kv,
                                                       int layer) {
  const KvCacheShape& shape = kv.shape();
  cpu::PagedAttentionParams p;
  p.q = scratch_.q.data();
  p.k_cache = kv.k(layer);
  p.v_cache = kv.v(layer);
  p.out = scratch_.attn.data();
  p.query_start = b.query_start.data();
  p.context_lens = b.context_lens.data();
  p.block_tables = b.block_tables.data();
  p.max_blocks_per_seq = b.max_blocks_per_seq;
  p.num_seqs = b.num_seqs();
  p.num_heads = config_.num_heads;
  p.num_kv_heads = config_.num_kv_heads;
  p.head_dim = config_.head_dim;
  p.block_size = shape.block_size;
  p.num_blocks = shape.num_blocks;
  p.scale = float(1.0 / std::sqrt(double(config_.head_dim)));  // HF: head_dim ** -0.5
  return p;
}

void LlamaModel::project_and_store(int layer, const ForwardBatch& b, KvCache& kv) {
  const ModelConfig& c = config_;
  const Layer& l = layers_[size_t(layer)];
  Scratch& s = scratch_;
  const int64_t n = b.num_tokens();
  cpu::rms_norm(s.hidden.data(), l.input_norm.data(), n, c.hidden_size, c.rms_norm_eps,
                s.normed.data());
  cpu::matmul(s.normed.data(), n, with_bias(l.q, l.q_bias), s.q.data(), pool_);
  cpu::matmul(s.normed.data(), n, with_bias(l.k, l.k_bias), s.k.data(), pool_);
  cpu::matmul(s.normed.data(), n, with_bias(l.v, l.v_bias), s.v.data(), pool_);
  cpu::apply_rope(s.q.data(), b.positions.data(), n, c.num_heads, c.head_dim, inv_freq_.data());
  cpu::apply_rope(s.k.data(), b.positions.data(), n, c.num_kv_heads, c.head_dim, inv_freq_.data());
  const KvCacheShape& shape = kv.shape();
  cpu::store_kv(s.k.data(), s.v.data(), b.slot_mapping.data(), n, shape.slot_floats(),
                shape.num_slots(), kv.k(layer), kv.v(layer));
}

void LlamaModel::attend(int layer, const ForwardBatch& b, KvCache& kv) {
  const ModelConfig& c = config_;
  const Layer& l = layers_[size_t(layer)];
  Scratch& s = scratch_;
  const int64_t n = b.num_tokens();
  cpu::paged_attention(attention_params(b, kv, layer), pool_);
  cpu::matmul(s.attn.data(), n, with_bias(l.o, l.o_bias), s.proj.data(), pool_);
  add_in_place(s.hidden.data(), s.proj.data(), n * c.hidden_size);
}

void LlamaModel::mlp_block(int layer, int64_t n) {
  const ModelConfig& c = config_;
  const Layer& l = layers_[size_t(layer)];
  Scratch& s = scratch_;
  cpu::rms_norm(s.hidden.data(), l.post_norm.data(), n, c.hidden_size, c.rms_norm_eps,
                s.normed.data());
  cpu::matmul(s.normed.data(), n, l.gate, s.gate.data(), pool_);
  cpu::matmul(s.normed.data(), n, l.up, s.up.data(), pool_);
  cpu::silu_mul(s.gate.data(), s.up.data(), n * c.intermediate_size, s.gate.data());
  cpu::matmul(s.gate.data(), n, l.down, s.proj.data(), pool_);
  add_in_place(s.hidden.data(), s.proj.data(), n * c.hidden_size);
}

void LlamaModel::compute_logits(const ForwardBatch& b, float* logits) {
  const int64_t m = int64_t(b.logits_indices.size()), hidden = config_.hidden_size;
  if (m == 0) return;
  for (int64_t i = 0; i < m; ++i) {
    const float* row = scratch_.hidden.data() + int64_t(b.logits_indices[size_t(i)]) * hidden;
    std::copy(row, row + hidden, scratch_.last.data() + i * hidden);
  }
  cpu::rms_norm(scratch_.last.data(), final_norm_.data(), m, hidden, config_.rms_norm_eps,
                scratch_.last.data());
  cpu::matmul(scratch_.last.data(), m, lm_head_, logits, pool_);
}

}  // namespace tandem
