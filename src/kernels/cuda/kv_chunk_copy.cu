// kv_chunk_copy: a grid-stride loop over (token, layer * 2 + kv, vector of the slot) with the
// vector index fastest, so both the cache slot and the chunk row are read and written coalesced.
// 16-byte vectors when every row is 16-byte aligned, else 2-byte elements.
#include "kernels/cuda/kv_chunk_copy.cuh"

namespace tandem::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 132 * 8;  // a few waves' worth on an H100; the loop covers the rest

template <typename Vec>
__global__ void kv_chunk_copy_kernel(KvChunkCopyParams p) {
  constexpr int64_t kPerVec = sizeof(Vec) / sizeof(bf16);
  const int64_t vecs = p.slot_elems / kPerVec;          // vectors per slot row
  const int64_t rows = int64_t(2) * p.num_layers;       // (layer, kv) sections
  const int64_t tokens = p.copy_end - p.copy_begin;
  const int64_t total = tokens * rows * vecs;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t vec = i % vecs;
    const int64_t rest = i / vecs;
    const int64_t lk = rest % rows;  // layer * 2 + kv
    const int64_t t = p.copy_begin + rest / rows;  // run-relative token
    const int64_t c = t / p.chunk_size;
    const int64_t n_c = min(p.chunk_size, p.run_tokens - c * p.chunk_size);
    const int64_t chunk_row = c * p.chunk_size * rows + lk * n_c + (t - c * p.chunk_size);
    const int64_t seq_token = p.first_token + t;
    const int64_t slot = int64_t(p.block_table[seq_token / p.block_size]) * p.block_size +
                         seq_token % p.block_size;
    bf16* layer = (lk & 1) ? p.v_layers[lk >> 1] : p.k_layers[lk >> 1];
    Vec* cache_vec = reinterpret_cast<Vec*>(layer + slot * p.slot_elems) + vec;
    Vec* chunk_vec = reinterpret_cast<Vec*>(p.chunks + chunk_row * p.slot_elems) + vec;
    if (p.direction == KvCopyDirection::kCacheToChunks) {
      *chunk_vec = *cache_vec;
    } else {
      *cache_vec = *chunk_vec;
    }
  }
}

}  // namespace

cudaError_t kv_chunk_copy(const KvChunkCopyParams& p, cudaStream_t stream) {
  if (p.num_layers <= 0 || p.slot_elems <= 0 || p.block_size <= 0 || p.chunk_size <= 0 ||
      p.run_tokens <= 0 || p.copy_begin < 0 || p.copy_begin >= p.copy_end ||
      p.copy_end > p.run_tokens || p.first_token < 0 || !p.k_layers || !p.v_layers ||
      !p.block_table || !p.chunks) {
    return cudaErrorInvalidValue;
  }
  const bool vec16 = (p.slot_elems * int64_t(sizeof(bf16))) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(p.chunks) % 16 == 0;
  const int64_t per_vec = vec16 ? 8 : 1;
  const int64_t total = (p.copy_end - p.copy_begin) * 2 * p.num_layers * (p.slot_elems / per_vec);
  const int blocks = int(std::min<int64_t>(kMaxBlocks, (total + kThreads - 1) / kThreads));
  if (vec16) {
    kv_chunk_copy_kernel<uint4><<<blocks, kThreads, 0, stream>>>(p);
  } else {
    kv_chunk_copy_kernel<uint16_t><<<blocks, kThreads, 0, stream>>>(p);
  }
  return last_launch_error();
}

}  // namespace tandem::cuda
