// Causal grouped-query attention over the paged bf16 KV cache on the GPU, for a flat batch of
// sequences (prefill, chunked prefill against a cached prefix, decode, mixed) — the same contract
// as the CPU reference kernels/cpu/paged_attention: query row i of a sequence with q_len new tokens
// and context_len tokens sits at position context_len - q_len + i and sees KV [0, that position].
// Two kernels: a flash-style tensor-core kernel (head_dim 64/128, batches holding a prefill) and a
// split-KV kernel whose partial results a second pass combines (decode, any even head_dim <= 256).
#pragma once
#include <cstddef>

#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

struct PagedAttentionParams {
  // q, k_cache and v_cache are 16-byte aligned (the kernels move 16-byte chunks).
  const bf16* q = nullptr;        // (num_tokens, q_stride): head h at h * head_dim, RoPE applied
  int64_t q_stride = 0;           // elements between query rows, >= num_heads * head_dim, % 8 == 0
  const bf16* k_cache = nullptr;  // (num_blocks, block_size, num_kv_heads, head_dim)
  const bf16* v_cache = nullptr;  // (num_blocks, block_size, num_kv_heads, head_dim)
  bf16* out = nullptr;            // (num_tokens, num_heads, head_dim) contiguous
  const int32_t* query_start = nullptr;   // (num_seqs + 1) device, cumulative, [0] = 0
  const int32_t* context_lens = nullptr;  // (num_seqs) device, KV length after this step
  const int32_t* block_tables = nullptr;  // (num_seqs, max_blocks_per_seq) device, row-major
  int32_t max_blocks_per_seq = 0;
  int32_t num_seqs = 0;
  int32_t num_tokens = 0;
  int32_t max_query_len = 0;  // host-known maxima, to size the grid
  int32_t max_context_len = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;  // divides num_heads; num_heads / num_kv_heads <= 8
  int32_t head_dim = 0;      // even, <= 256; a multiple of 8
  int32_t block_size = 0;
  // Rows (slots) of k_cache and v_cache, each num_kv_heads * head_dim long: lets the prefill kernel
  // read the caches through TMA tensor maps. 0: unknown (the kernel loads through cp.async).
  int64_t num_cache_slots = 0;
  float scale = 0.0f;          // softmax scale, usually 1 / sqrt(head_dim)
  float* workspace = nullptr;  // split-KV partial results, paged_attention_workspace_bytes()
  size_t workspace_bytes = 0;
  // Splits of a row one split-KV block walks (head_dim 64/128): 0 lets the launcher choose (see
  // split_kv.cu), else rounded down to a power of two, at most 4; the output's bits are the same
  // for every choice.
  int32_t split_kv_splits_per_block = 0;
};

// Which kernel runs a batch: kAuto sends each sequence with 16+ new tokens to the tensor-core
// kernel (head_dim 64/128) and the rest to split-KV, chosen per sequence and with fixed split
// boundaries, so a row's result does not depend on the rest of the batch; tests force each.
// kSplitKvBlockMerge / kSplitKvWarpMerge: split-KV with its merge of the splits forced to one of
// its two kernels (chosen by the batch's size otherwise; tests check they agree bit for bit).
// At head_dim 128, kTensorCore and kAuto take the flash kernel on wgmma with TMA loads where the
// cache allows (num_cache_slots known, a block size that is a multiple of 8 dividing 128), else
// with cp.async loads; kTensorCoreCpAsync forces the latter, kTensorCoreMmaSync the mma.sync one.
enum class AttentionKernel {
  kAuto,
  kTensorCore,
  kTensorCoreCpAsync,
  kTensorCoreMmaSync,
  kSplitKv,
  kSplitKvBlockMerge,
  kSplitKvWarpMerge
};

// Bytes of workspace the split-KV kernel needs at most (for any batch with these sizes).
size_t paged_attention_workspace_bytes(int32_t num_heads, int32_t head_dim);

// Returns cudaErrorInvalidValue for sizes the kernels do not support (named above) and
// cudaErrorNotSupported when kTensorCore, kTensorCoreCpAsync, kTensorCoreMmaSync or
// kSplitKvWarpMerge is forced for a head_dim other than 64 or 128.
cudaError_t paged_attention(const PagedAttentionParams& p, cudaStream_t stream,
                            AttentionKernel kernel = AttentionKernel::kAuto);

}  // namespace tandem::cuda
