// The Llama family's forward pass on the CPU (llama, mistral, qwen2 with its q/k/v biases): maps
// Hugging Face weight names through WeightStore with expected shapes, keeps the weights memory-
// mapped in their checkpoint dtype (only norms and biases are copied to f32), and runs one flat
// ForwardBatch (prefill, chunked prefill, decode or mixed) per call through the paged KV cache.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/paged_attention.h"
#include "kv/kv_cache.h"
#include "model/forward_batch.h"
#include "model/model_config.h"
#include "model/weight_store.h"

namespace tandem {

class ThreadPool;

class LlamaModel {
 public:
  // Reads <dir>/config.json and the checkpoint's safetensors. Throws tandem::Error naming the
  // file and tensor for a missing or misshapen weight, or the key for an unsupported config.
  // `pool` (may be null: single-threaded) must outlive the model.
  LlamaModel(const std::filesystem::path& dir, ThreadPool* pool);
  LlamaModel(ModelConfig config, WeightStore weights, ThreadPool* pool);
  LlamaModel(std::pair<ModelConfig, WeightStore> checkpoint, ThreadPool* pool);
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const ModelConfig& config() const { return config_; }

  // The KV cache this model needs, for `num_blocks` blocks of `block_size` tokens.
  KvCacheShape kv_cache_shape(int64_t num_blocks, int block_size = kDefaultBlockSize) const;

  // Runs `batch`: stores its tokens' K/V at slot_mapping in `kv` and writes logits
  // (batch.logits_indices.size(), vocab_size) for the rows in logits_indices. Throws
  // tandem::Error for an invalid batch before touching the cache. Not thread-safe: per-call
  // scratch buffers are kept and reused across calls.
  void forward(const ForwardBatch& batch, KvCache& kv, float* logits);

 private:
  struct Layer {
    std::vector<float> input_norm;  // (hidden)
    cpu::MatmulWeight q, k, v, o;   // (heads*hd, hidden), (kv*hd, hidden) x2, (hidden, heads*hd)
    std::vector<float> q_bias, k_bias, v_bias;  // (heads*hd), (kv*hd) x2; empty if none
    std::vector<float> o_bias;                  // (hidden); Llama with attention_bias only
    std::vector<float> post_norm;               // (hidden)
    cpu::MatmulWeight gate, up, down;           // (inter, hidden) x2, (hidden, inter)
  };
  struct Scratch {
    std::vector<float> hidden;  // (num_tokens, hidden) residual stream
    std::vector<float> normed;  // (num_tokens, hidden) normalized input of a block
    std::vector<float> q;       // (num_tokens, heads, hd)
    std::vector<float> k, v;    // (num_tokens, kv_heads, hd)
    std::vector<float> attn;    // (num_tokens, heads, hd)
    std::vector<float> proj;    // (num_tokens, hidden) o_proj / down_proj output
    std::vector<float> gate;    // (num_tokens, inter)
    std::vector<float> up;      // (num_tokens, inter)
    std::vector<float> last;    // (num_logits, hidden) rows whose logits are wanted
  };

  void load_weights();
  Layer load_layer(int index) const;
  void validate(const ForwardBatch& batch, const KvCache& kv) const;
  void resize_scratch(int64_t num_tokens, int64_t num_logits);
  cpu::PagedAttentionParams attention_params(const ForwardBatch& batch, KvCache& kv, int layer);
  // A layer's attention half: project_and_store (norm, q/k/v, RoPE, K/V into the cache) for every
  // row, then attend (attention, o_proj, residual add) for the rows of `batch`.
  void project_and_store(int layer, const ForwardBatch& batch, KvCache& kv);
  void attend(int layer, const ForwardBatch& batch, KvCache& kv);
  // The last layer when only `tail` (sampled_rows_batch of `batch`) needs finishing.
  void last_layer_for_sampled_rows(const ForwardBatch& batch, const ForwardBatch& tail,
                                   KvCache& kv);
  void mlp_block(int layer, int64_t num_tokens);
  void compute_logits(const ForwardBatch& batch, float* logits);

  ModelConfig config_;
  WeightStore weights_;
  ThreadPool* pool_ = nullptr;
  std::vector<Layer> layers_;         // (num_layers)
  const TensorRef* embed_ = nullptr;  // (vocab, hidden) model.embed_tokens.weight
  std::vector<float> final_norm_;     // (hidden) model.norm.weight
  cpu::MatmulWeight lm_head_;         // (vocab, hidden) lm_head.weight, or embed_ when tied
  std::vector<float> inv_freq_;       // (head_dim / 2) RoPE inverse frequencies
  Scratch scratch_;
};

}  // namespace tandem
