// BlockManager: per-sequence block allocation with prefix reuse over BlockPool + PrefixCache.
#include "kv/block_manager.h"

#include "core/error.h"

namespace tandem {

BlockManager::BlockManager(const BlockManagerConfig& config)
    : block_size_(config.block_size),
      prefix_caching_(config.prefix_caching),
      root_(root_block_hash(config.model_fingerprint)),
      pool_(config.num_blocks),
      cache_(config.num_blocks) {
  TANDEM_CHECK(config.block_size > 0, "block manager: block_size must be > 0, got {}",
               config.block_size);
}

void BlockManager::ensure_hashes(SeqBlocks& seq, std::span<const int32_t> tokens,
                                 int num_full_blocks, std::string_view extra_key) const {
  TANDEM_CHECK(size_t(num_full_blocks) * size_t(block_size_) <= tokens.size(),
               "block manager: {} full blocks need {} tokens, the sequence has {}", num_full_blocks,
               num_full_blocks * block_size_, tokens.size());
  while (int(seq.hashes.size()) < num_full_blocks) {
    size_t i = seq.hashes.size();
    const BlockHash& parent = i == 0 ? root_ : seq.hashes[i - 1];
    seq.hashes.push_back(hash_block(
        parent, tokens.subspan(i * size_t(block_size_), size_t(block_size_)), extra_key));
  }
}

std::vector<int> BlockManager::match_prefix(SeqBlocks& seq, std::span<const int32_t> tokens,
                                            std::string_view extra_key) {
  std::vector<int> blocks;
  if (!prefix_caching() || tokens.empty()) return blocks;
  int max_blocks = int(tokens.size() - 1) / block_size_;
  ensure_hashes(seq, tokens, max_blocks, extra_key);
  for (int i = 0; i < max_blocks; ++i) {
    auto block = cache_.lookup(seq.hashes[size_t(i)]);
    if (!block) break;
    blocks.push_back(*block);
  }
  return blocks;
}

int BlockManager::take_fresh_block() {
  int block = pool_.allocate();
  cache_.evict(block);  // its old content, if cached, is about to be overwritten
  return block;
}

bool BlockManager::allocate(SeqBlocks& seq, int num_tokens, std::span<const int> cached) {
  TANDEM_CHECK(cached.empty() || seq.table.empty(),
               "block manager: cached blocks can only start an empty block table");
  int have = int(seq.table.size() + cached.size());
  int fresh = std::max(0, blocks_for_tokens(num_tokens) - have);
  int revived = 0;  // cached blocks that leave the free queue
  for (int b : cached) revived += pool_.ref_count(b) == 0 ? 1 : 0;
  if (fresh + revived > pool_.num_free()) return false;
  for (int b : cached) {
    pool_.acquire(b);
    seq.table.push_back(b);
  }
  seq.num_cached += int(cached.size());
  for (int i = 0; i < fresh; ++i) seq.table.push_back(take_fresh_block());
  return true;
}

void BlockManager::cache_full_blocks(SeqBlocks& seq, std::span<const int32_t> tokens,
                                     int num_computed, std::string_view extra_key) {
  if (!prefix_caching()) return;
  int num_full = std::min(num_computed / block_size_, int(seq.table.size()));
  if (num_full <= seq.num_cached) return;
  ensure_hashes(seq, tokens, num_full, extra_key);
  for (int i = seq.num_cached; i < num_full; ++i) {
    cache_.insert(seq.hashes[size_t(i)], seq.table[size_t(i)]);  // false: another copy exists
  }
  seq.num_cached = num_full;
}

void BlockManager::free(SeqBlocks& seq) {
  for (auto it = seq.table.rbegin(); it != seq.table.rend(); ++it) {
    bool cached = cache_.contains_block(*it);
    pool_.release(*it, cached ? FreeOrder::kEvictLast : FreeOrder::kReuseFirst);
  }
  seq.table.clear();
  seq.num_cached = 0;
}

void BlockManager::record_lookup(int queried_tokens, int hit_tokens) {
  cache_.record_lookup(queried_tokens, hit_tokens);
}

}  // namespace tandem
