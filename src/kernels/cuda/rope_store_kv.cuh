// Rotary position embedding fused with writing K/V into the paged cache (vLLM's rotary_embedding
// + reshape_and_cache in one pass over the fused QKV GEMM output). Optional q/k/v biases (Qwen2)
// are added first. CPU references: kernels/cpu/rope (apply_rope) and kernels/cpu/store_kv.
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

struct RopeStoreKvParams {
  bf16* qkv = nullptr;         // (n, qkv_stride): per row q (heads, hd) | k (kv, hd) | v (kv, hd)
  int64_t qkv_stride = 0;      // elements between rows, >= (heads + 2 * kv_heads) * hd
  const bf16* bias = nullptr;  // ((heads + 2 * kv_heads) * hd) or null
  const int32_t* positions = nullptr;     // (n)
  const int64_t* slot_mapping = nullptr;  // (n) slot = block * block_size + offset
  const float* inv_freq = nullptr;        // (hd / 2)
  bf16* k_cache = nullptr;                // (num_slots, kv_heads, hd)
  bf16* v_cache = nullptr;                // (num_slots, kv_heads, hd)
  int64_t num_slots = 0;  // slots outside [0, num_slots) are skipped (the host validates them)
  int64_t n = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;  // even
};

// Rotates q in place inside qkv (rotate_half convention, angle = inv_freq[i] * position in f32)
// and stores rotated k and v at each row's slot. k stays unrotated in qkv; attention reads the
// cache.
cudaError_t rope_store_kv(const RopeStoreKvParams& p, cudaStream_t stream);

}  // namespace tandem::cuda
