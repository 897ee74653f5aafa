// PrefixCache: the index from block hash to the KV block holding that content, so a new
// sequence whose prompt starts like an earlier one reuses its KV instead of recomputing it.
// Only full blocks are indexed. A cached block stays indexed while it is in use and after it is
// freed (it then waits in the BlockPool's free queue, LRU order) until the pool hands it out
// for new content and the BlockManager calls evict(). Also counts lookups for /metrics.
#pragma once
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kv/block_hash.h"

namespace tandem {

class PrefixCache {
 public:
  explicit PrefixCache(int num_blocks);

  // The block holding `hash`'s content, if cached.
  [[nodiscard]] std::optional<int> lookup(const BlockHash& hash) const;
  // Records that `block` holds `hash`'s content. Returns false and changes nothing when that
  // content is already cached in another block (the first copy wins) or `block` is indexed.
  bool insert(const BlockHash& hash, int block);
  // Forgets `block`'s content; returns true when it was cached (an eviction).
  bool evict(int block);
  [[nodiscard]] bool contains_block(int block) const;
  int num_cached_blocks() const { return int(by_hash_.size()); }

  // Counters: prompt tokens looked up, of which found, and blocks evicted.
  void record_lookup(int queried_tokens, int hit_tokens);
  uint64_t queried_tokens() const { return queried_tokens_; }
  uint64_t hit_tokens() const { return hit_tokens_; }
  uint64_t evictions() const { return evictions_; }

 private:
  void check_id(int block) const;

  std::unordered_map<BlockHash, int, BlockHashHasher> by_hash_;
  std::vector<std::optional<BlockHash>> block_hash_;  // (num_blocks) the content of each block
  uint64_t queried_tokens_ = 0;
  uint64_t hit_tokens_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace tandem
