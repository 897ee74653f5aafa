// BlockManager: gives each sequence the KV blocks it needs (nano-vllm's block_manager, vLLM's
// KVCacheManager). It composes the BlockPool (ref counts, free queue) with the PrefixCache
// (hash -> block): a new sequence first takes the cached blocks matching its prompt, then fresh
// blocks; full blocks are offered to the cache once computed; freed blocks with cached content
// wait in LRU order until the pool needs them. Plain C++: block ids only, no KV memory.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kv/block_hash.h"
#include "kv/block_pool.h"
#include "kv/prefix_cache.h"

namespace tandem {

enum class PrefixCaching { kDisabled, kEnabled };

struct BlockManagerConfig {
  int num_blocks = 0;
  int block_size = 16;  // tokens per block
  PrefixCaching prefix_caching = PrefixCaching::kEnabled;
  std::string model_fingerprint;  // hashed into the root of every hash chain
};

// One sequence's view of the KV cache.
struct SeqBlocks {
  // (num blocks) block ids: token i lives in table[i / block_size], slot i % block_size.
  std::vector<int32_t> table;
  // Hashes of the sequence's leading full blocks of tokens (grown lazily, kept on preemption:
  // the tokens do not change).
  std::vector<BlockHash> hashes;
  int num_cached = 0;  // leading table entries already offered to (or taken from) the cache
};

class BlockManager {
 public:
  explicit BlockManager(const BlockManagerConfig& config);

  int block_size() const { return block_size_; }
  int num_blocks() const { return pool_.num_blocks(); }
  int num_free_blocks() const { return pool_.num_free(); }  // cached-but-unused blocks count
  int num_used_blocks() const { return pool_.num_used(); }
  bool prefix_caching() const { return prefix_caching_ == PrefixCaching::kEnabled; }
  const PrefixCache& prefix_cache() const { return cache_; }
  const BlockPool& pool() const { return pool_; }
  int blocks_for_tokens(int num_tokens) const {
    return (num_tokens + block_size_ - 1) / block_size_;
  }

  // The cached blocks holding the longest prefix of `tokens` made of whole blocks, covering at
  // most tokens.size() - 1 tokens (the last token is always computed: the model must produce
  // its logits). No references are taken: pass the result to allocate() before anything else
  // allocates. Empty when prefix caching is off.
  [[nodiscard]] std::vector<int> match_prefix(SeqBlocks& seq, std::span<const int32_t> tokens,
                                              std::string_view extra_key);

  // Grows seq.table to hold `num_tokens` tokens. With an empty table, `cached` (from
  // match_prefix) becomes its head first, one reference each. Returns false and changes
  // nothing when the pool lacks free blocks.
  [[nodiscard]] bool allocate(SeqBlocks& seq, int num_tokens, std::span<const int> cached = {});

  // Offers seq's full blocks among its first `num_computed` tokens to the prefix cache.
  void cache_full_blocks(SeqBlocks& seq, std::span<const int32_t> tokens, int num_computed,
                         std::string_view extra_key);

  // Releases all of seq's blocks, last block first (so a shared prefix is evicted last).
  void free(SeqBlocks& seq);

  // Counts a prefix lookup for a sequence that was admitted (see PrefixCache counters).
  void record_lookup(int queried_tokens, int hit_tokens);

 private:
  // Extends seq.hashes to cover the first `num_full_blocks` blocks of `tokens`.
  void ensure_hashes(SeqBlocks& seq, std::span<const int32_t> tokens, int num_full_blocks,
                     std::string_view extra_key) const;
  int take_fresh_block();

  int block_size_;
  PrefixCaching prefix_caching_;
  BlockHash root_;
  BlockPool pool_;
  PrefixCache cache_;
};

}  // namespace tandem
