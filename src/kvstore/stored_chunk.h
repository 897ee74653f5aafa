// StoredChunk: one KV chunk as the tiers keep it — its tokens' KV gathered into bytes in
// KvChunkLayout order, (num_layers, 2, num_tokens, num_kv_heads, head_dim) f32.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace tandem {

struct StoredChunk {
  uint32_t num_tokens = 0;
  std::vector<uint8_t> bytes;  // KvChunkLayout::chunk_bytes(num_tokens)
};
// Shared and immutable: a tier, a pending disk write and a loading sequence may hold one chunk.
using ChunkPtr = std::shared_ptr<const StoredChunk>;

}  // namespace tandem
