// CpuChunkTier: KV chunks in host memory (LMCache's local_cpu), keyed by chunk hash, bounded by
// max_local_cpu_size with least-recently-used eviction. Thread-safe: the engine thread reads
// and fills it while /metrics reads its counters.
#pragma once
#include <cstdint>
#include <list>
#include <mutex>
#include <unordered_map>

#include "kv/block_hash.h"
#include "kvstore/chunk_tier_stats.h"
#include "kvstore/stored_chunk.h"

namespace tandem {

class CpuChunkTier {
 public:
  explicit CpuChunkTier(uint64_t limit_bytes);

  // The chunk (now the most recently used), or null; counts a lookup.
  ChunkPtr get(const BlockHash& key);
  [[nodiscard]] bool contains(const BlockHash& key) const;
  // Inserts the chunk (or marks an existing copy used), evicting least recently used chunks
  // until it fits; false when the chunk alone is larger than the limit (not stored).
  bool put(const BlockHash& key, ChunkPtr chunk);
  void record_hit_tokens(uint64_t tokens);
  [[nodiscard]] ChunkTierStats stats() const;

 private:
  struct Entry {
    ChunkPtr chunk;
    std::list<BlockHash>::iterator lru_at;
  };

  mutable std::mutex mutex_;
  std::unordered_map<BlockHash, Entry, BlockHashHasher> entries_;
  std::list<BlockHash> lru_;  // least recently used first
  ChunkTierStats stats_;
};

}  // namespace tandem
