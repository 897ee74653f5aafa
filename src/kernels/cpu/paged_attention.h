// Causal grouped-query attention over a flat batch of sequences whose keys and values live in a
// paged KV cache (vLLM/nano-vllm layout). Covers prefill, chunked prefill (new tokens attending to
// an already-cached prefix), decode and mixed batches: query token i of a sequence with q_len new
// tokens and context_len cached-plus-new tokens sits at position context_len - q_len + i and sees
// KV positions [0, that position].
#pragma once
#include <cstdint>

namespace tandem {
class ThreadPool;
}

namespace tandem::cpu {

struct PagedAttentionParams {
  const float* q = nullptr;               // (num_tokens, num_heads, head_dim), RoPE applied
  const float* k_cache = nullptr;         // (num_blocks, block_size, num_kv_heads, head_dim)
  const float* v_cache = nullptr;         // (num_blocks, block_size, num_kv_heads, head_dim)
  float* out = nullptr;                   // (num_tokens, num_heads, head_dim)
  const int32_t* query_start = nullptr;   // (num_seqs + 1) cumulative query lengths, [0] = 0
  const int32_t* context_lens = nullptr;  // (num_seqs) KV length after this step
  const int32_t* block_tables = nullptr;  // (num_seqs, max_blocks_per_seq) block ids, row-major
  int32_t max_blocks_per_seq = 0;
  int32_t num_seqs = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;  // divides num_heads; query head h reads KV head h / (heads / kv)
  int32_t head_dim = 0;
  int32_t block_size = 0;
  int64_t num_blocks = 0;  // blocks in the cache, for bounds checks
  float scale = 0.0f;      // softmax scale, usually 1 / sqrt(head_dim)
};

// out = softmax(q k^T * scale + causal mask) v for every query token and head. Throws
// tandem::Error for inconsistent lengths or a block id outside the cache (cheap checks, done once
// per sequence); the model validates the batch before calling.
void paged_attention(const PagedAttentionParams& p, ThreadPool* pool);

}  // namespace tandem::cpu
