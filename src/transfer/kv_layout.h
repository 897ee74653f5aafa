// KvChunkLayout: the layout layer of KV transfer (STYLE habit 7) — how one chunk of a sequence's
// KV becomes bytes in the transfer buffer and back. A chunk of n tokens is one contiguous region
//   (num_layers, 2 [K then V], n, num_kv_heads, head_dim) in the cache's dtype (f32 on the CPU,
// bf16 on CUDA), gathered from the paged cache on the sender and scattered into (other) blocks on
// the receiver, so a request's chunks travel as a few large puts whatever the block size on
// either side. The functions below are the host implementation; kernels/cuda/kv_chunk_copy.cuh
// is the GPU one.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>

#include "kv/kv_cache.h"
#include "transfer/wire_protocol.h"

namespace tandem {

struct KvChunkLayout {
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  DType dtype = DType::kF32;

  static KvChunkLayout from_shape(const KvCacheShape& shape);

  // Bytes of one token's K and V over all layers: 2 * layers * kv_heads * head_dim * dtype size.
  uint64_t token_bytes() const;
  uint64_t chunk_bytes(int num_tokens) const { return token_bytes() * uint64_t(num_tokens); }

  // Names this layout and the model whose KV it holds (model_fingerprint, as for chunk keys);
  // a receiver refuses an AllocRequest whose fingerprint differs from its own.
  LayoutFingerprint fingerprint(std::string_view model_fingerprint) const;
};

// Throws tandem::Error unless tokens [first_token, first_token + num_tokens) (num_tokens > 0) lie
// inside `block_table` and every block id they touch is inside a cache of `shape`: the checks
// every gather and scatter (host or GPU) makes before it copies.
void check_chunk_tokens(const KvCacheShape& shape, std::span<const int32_t> block_table,
                        int64_t first_token, int num_tokens);

// Copies tokens [first_token, first_token + num_tokens) of a sequence whose block ids are
// `block_table` (token i in block_table[i / block_size], slot i % block_size) from `cache` into
// `out`, which must hold exactly layout.chunk_bytes(num_tokens) bytes. Throws tandem::Error for a
// token outside the table, a block id outside the cache, or a wrong output size.
void gather_chunk(const KvCache& cache, std::span<const int32_t> block_table, int64_t first_token,
                  int num_tokens, std::span<uint8_t> out);

// The inverse: writes a gathered chunk into the sequence's blocks of `cache`.
void scatter_chunk(std::span<const uint8_t> in, std::span<const int32_t> block_table,
                   int64_t first_token, int num_tokens, KvCache& cache);

// Writes only tokens [first_token + begin, first_token + end) of a gathered chunk of
// `chunk_tokens` tokens (in: layout.chunk_bytes(chunk_tokens) bytes) that starts at token
// `first_token` of the sequence: how a receiver loads part of a chunk (the rest is already
// cached or still to be computed). Throws tandem::Error for 0 <= begin < end <= chunk_tokens
// violated, and as scatter_chunk.
void scatter_chunk_tokens(std::span<const uint8_t> in, int chunk_tokens, int begin, int end,
                          std::span<const int32_t> block_table, int64_t first_token,
                          KvCache& cache);

}  // namespace tandem
