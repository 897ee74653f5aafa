// PrefixCache: a hash -> block map with its reverse, and lookup counters.
#include "kv/prefix_cache.h"

#include "core/error.h"

namespace tandem {

PrefixCache::PrefixCache(int num_blocks) {
  TANDEM_CHECK(num_blocks > 0, "prefix cache: num_blocks must be > 0, got {}", num_blocks);
  block_hash_.resize(size_t(num_blocks));
}

void PrefixCache::check_id(int block) const {
  TANDEM_CHECK(block >= 0 && size_t(block) < block_hash_.size(),
               "prefix cache: block id {} outside [0, {})", block, block_hash_.size());
}

std::optional<int> PrefixCache::lookup(const BlockHash& hash) const {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

bool PrefixCache::insert(const BlockHash& hash, int block) {
  check_id(block);
  if (block_hash_[size_t(block)] || by_hash_.contains(hash)) return false;
  by_hash_.emplace(hash, block);
  block_hash_[size_t(block)] = hash;
  return true;
}

bool PrefixCache::evict(int block) {
  check_id(block);
  auto& hash = block_hash_[size_t(block)];
  if (!hash) return false;
  by_hash_.erase(*hash);
  hash.reset();
  ++evictions_;
  return true;
}

bool PrefixCache::contains_block(int block) const {
  check_id(block);
  return block_hash_[size_t(block)].has_value();
}

void PrefixCache::record_lookup(int queried_tokens, int hit_tokens) {
  queried_tokens_ += uint64_t(queried_tokens);
  hit_tokens_ += uint64_t(hit_tokens);
}

}  // namespace tandem
