// Moving KV between the paged bf16 cache and transfer chunks on the GPU: the CUDA side of
// transfer/kv_layout.h (whose host functions are its CPU reference). A "run" is a sequence's
// chunks laid back to back, chunk c holding tokens [c * chunk_size, +n_c) of the run as
//   (num_layers, 2 [K, V], n_c, kv_heads, head_dim) bf16,
// every chunk chunk_size tokens long but the last. One launch copies any token range of a run,
// in either direction: the prefiller gathers a whole request in one launch, the decoder scatters
// each received chunk (or the part of it it loads).
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

enum class KvCopyDirection { kCacheToChunks, kChunksToCache };

struct KvChunkCopyParams {
  bf16* const* k_layers = nullptr;  // device array (num_layers) of K caches, each
                                    // (num_slots, kv_heads, head_dim)
  bf16* const* v_layers = nullptr;  // the same for V
  int num_layers = 0;
  int64_t slot_elems = 0;  // kv_heads * head_dim
  int block_size = 0;      // tokens per cache block
  const int32_t* block_table = nullptr;  // device: the sequence's block ids; must cover the tokens
  int64_t first_token = 0;  // the sequence token at which the run's first chunk starts
  int64_t run_tokens = 0;   // tokens in the run
  int64_t chunk_size = 0;   // tokens per chunk (the last may be shorter)
  int64_t copy_begin = 0;   // run-relative token range copied: [copy_begin, copy_end)
  int64_t copy_end = 0;
  bf16* chunks = nullptr;  // the run (run_tokens * 2 * num_layers * slot_elems elements)
  KvCopyDirection direction = KvCopyDirection::kCacheToChunks;
};

// Enqueues the copy; cudaErrorInvalidValue for inconsistent sizes. Block ids are not checked
// here: the caller checks them against the cache (transfer/kv_layout.h's check_chunk_tokens).
cudaError_t kv_chunk_copy(const KvChunkCopyParams& p, cudaStream_t stream);

}  // namespace tandem::cuda
