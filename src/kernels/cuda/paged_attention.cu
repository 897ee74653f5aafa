// paged_attention: checks the sizes, then sends each sequence of the batch to one kernel by its
// own query length — the flash prefill kernel (flash_prefill.cu) for 16+ new tokens at head_dim
// 64/128, split-KV (split_kv.cu) for the rest — so the choice never depends on the rest of the
// batch.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/cuda/paged_attention.cuh"

namespace tandem::cuda {
namespace {

using attention::kMaxGroup;

// Sequences with at least this many new tokens take the tensor-core kernel under kAuto; the choice
// depends only on the sequence itself, never on the rest of the batch.
constexpr int kTensorCoreMinQueryLen = 16;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

bool valid(const PagedAttentionParams& p) {
  return aligned16(p.q) && aligned16(p.k_cache) && aligned16(p.v_cache) && p.q_stride % 8 == 0 &&
         p.num_heads > 0 && p.num_kv_heads > 0 && p.num_heads % p.num_kv_heads == 0 &&
         p.num_heads / p.num_kv_heads <= kMaxGroup && p.head_dim > 0 && p.head_dim % 8 == 0 &&
         p.head_dim <= kMaxGenericHeadDim && ((p.head_dim / 8) & (p.head_dim / 8 - 1)) == 0 &&
         p.block_size > 0 && p.num_seqs > 0 && p.q_stride >= int64_t(p.num_heads) * p.head_dim &&
         p.max_query_len > 0 && p.max_context_len >= p.max_query_len && p.q && p.k_cache &&
         p.v_cache && p.out && p.query_start && p.context_lens && p.block_tables;
}

}  // namespace

size_t paged_attention_workspace_bytes(int32_t num_heads, int32_t head_dim) {
  return size_t(attention::kMaxSplitRows) * size_t(num_heads) * size_t(head_dim + 2) *
         sizeof(float);
}

cudaError_t paged_attention(const PagedAttentionParams& p, cudaStream_t stream,
                            AttentionKernel kernel) {
  if (p.num_tokens == 0) return cudaSuccess;
  if (!valid(p)) return cudaErrorInvalidValue;
  const bool tensor_core_ok = p.head_dim == 64 || p.head_dim == 128;
  constexpr int kNone = 1 << 30;
  switch (kernel) {
    case AttentionKernel::kTensorCore:
      return attention::launch_flash_prefill(p, stream, /*min_query_len=*/0);
    case AttentionKernel::kTensorCoreCpAsync:
      return attention::launch_flash_prefill(p, stream, /*min_query_len=*/0,
                                             attention::FlashKernel::kWgmmaCpAsync);
    case AttentionKernel::kTensorCoreMmaSync:
      return attention::launch_flash_prefill(p, stream, /*min_query_len=*/0,
                                             attention::FlashKernel::kMmaSync);
    case AttentionKernel::kSplitKv:
      return attention::launch_split_kv(p, stream, /*skip_query_len=*/kNone);
    case AttentionKernel::kSplitKvBlockMerge:
      return attention::launch_split_kv(p, stream, kNone, attention::SplitKvCombine::kBlock);
    case AttentionKernel::kSplitKvWarpMerge:
      if (!tensor_core_ok) return cudaErrorNotSupported;
      return attention::launch_split_kv(p, stream, kNone, attention::SplitKvCombine::kWarp);
    case AttentionKernel::kAuto:
      break;
  }
  // Each sequence goes to one kernel by its own query length.
  if (!tensor_core_ok || p.max_query_len < kTensorCoreMinQueryLen) {
    return attention::launch_split_kv(p, stream, kNone);
  }
  const cudaError_t e = attention::launch_flash_prefill(p, stream, kTensorCoreMinQueryLen);
  if (e != cudaSuccess || p.num_seqs == 1) return e;  // one sequence: the tensor-core kernel's
  return attention::launch_split_kv(p, stream, kTensorCoreMinQueryLen);
}

}  // namespace tandem::cuda
