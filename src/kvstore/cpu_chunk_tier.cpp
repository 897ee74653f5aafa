// CpuChunkTier: a hash map plus an LRU list under one mutex.
#include "kvstore/cpu_chunk_tier.h"

namespace tandem {

CpuChunkTier::CpuChunkTier(uint64_t limit_bytes) { stats_.bytes_limit = limit_bytes; }

ChunkPtr CpuChunkTier::get(const BlockHash& key) {
  std::lock_guard lock(mutex_);
  ++stats_.lookups;
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  lru_.splice(lru_.end(), lru_, it->second.lru_at);
  return it->second.chunk;
}

bool CpuChunkTier::contains(const BlockHash& key) const {
  std::lock_guard lock(mutex_);
  return entries_.contains(key);
}

bool CpuChunkTier::put(const BlockHash& key, ChunkPtr chunk) {
  const uint64_t size = chunk->bytes.size();
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    lru_.splice(lru_.end(), lru_, it->second.lru_at);
    return true;
  }
  if (size > stats_.bytes_limit) return false;
  while (stats_.bytes_used + size > stats_.bytes_limit && !lru_.empty()) {
    auto victim = entries_.find(lru_.front());
    stats_.bytes_used -= victim->second.chunk->bytes.size();
    entries_.erase(victim);
    lru_.pop_front();
    ++stats_.evictions;
  }
  lru_.push_back(key);
  stats_.bytes_used += size;
  stats_.stored_tokens += chunk->num_tokens;
  entries_.emplace(key, Entry{std::move(chunk), std::prev(lru_.end())});
  return true;
}

void CpuChunkTier::record_hit_tokens(uint64_t tokens) {
  std::lock_guard lock(mutex_);
  stats_.hit_tokens += tokens;
}

ChunkTierStats CpuChunkTier::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace tandem
