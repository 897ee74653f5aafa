// Block hashing (fixed digests: the cross-process contract), the PrefixCache index, and the
// BlockManager's prefix reuse: hits, the never-cache-the-last-token rule, LRU eviction.
#include "kv/prefix_cache.h"

#include <gtest/gtest.h>

#include <numeric>

#include "core/error.h"
#include "kv/block_hash.h"
#include "kv/block_manager.h"

namespace tandem {
namespace {

// Expected digests computed independently with Python's hashlib over the documented encoding:
//   root  = sha256(b"tandem.kv.root.v1" + u64le(len(fp)) + fp)[:16]
//   block = sha256(b"tandem.kv.block.v1" + parent + u32le(n) + i32le(tokens) + u64le(len(x)) +
//   x)[:16]
TEST(BlockHash, FixedInputsGiveFixedDigests) {
  BlockHash root = root_block_hash("stories260K-test");
  EXPECT_EQ(root.hex(), "cff4da5cc2f644f0f9b559905cbde088");
  EXPECT_EQ(root_block_hash("").hex(), "695a01d22262cce426f7fb988b63b751");
  std::vector<int32_t> first = {1, 403, 407, 261, 1, -5, 2147483647, 0};
  BlockHash b1 = hash_block(root, first, "");
  EXPECT_EQ(b1.hex(), "754ffc787aeb9e659e4bf57baaad59dd");
  std::vector<int32_t> second = {9, 8, 7, 6, 5, 4, 3, 2};
  EXPECT_EQ(hash_block(b1, second, "salt").hex(), "23cd28feaa5e5b0053c7455abe122fdf");
}

TEST(BlockHash, EveryInputChangesTheHash) {
  BlockHash root = root_block_hash("model-a");
  std::vector<int32_t> tokens = {1, 2, 3, 4};
  BlockHash base = hash_block(root, tokens, "");
  EXPECT_NE(root_block_hash("model-b"), root);
  EXPECT_NE(hash_block(root_block_hash("model-b"), tokens, ""), base);
  EXPECT_NE(hash_block(root, std::vector<int32_t>{1, 2, 3, 5}, ""), base);
  EXPECT_NE(hash_block(root, std::vector<int32_t>{1, 2, 3}, ""), base);
  EXPECT_NE(hash_block(root, tokens, "salt"), base);
  EXPECT_EQ(hash_block(root, tokens, ""), base);
}

TEST(PrefixCache, InsertLookupEvict) {
  PrefixCache cache(4);
  BlockHash h = root_block_hash("x"), g = root_block_hash("y");
  EXPECT_FALSE(cache.lookup(h));
  EXPECT_TRUE(cache.insert(h, 2));
  EXPECT_FALSE(cache.insert(h, 3));  // the first copy wins
  EXPECT_FALSE(cache.insert(g, 2));  // block 2 already holds h
  EXPECT_EQ(cache.lookup(h), 2);
  EXPECT_TRUE(cache.contains_block(2));
  EXPECT_FALSE(cache.contains_block(3));
  EXPECT_EQ(cache.num_cached_blocks(), 1);
  EXPECT_TRUE(cache.evict(2));
  EXPECT_FALSE(cache.evict(2));
  EXPECT_FALSE(cache.lookup(h));
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_THROW(cache.insert(h, 4), Error);
}

std::vector<int32_t> iota_tokens(int n, int start = 100) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

BlockManagerConfig config(int num_blocks, PrefixCaching pc = PrefixCaching::kEnabled) {
  return {.num_blocks = num_blocks,
          .block_size = 4,
          .prefix_caching = pc,
          .model_fingerprint = "test-model"};
}

// Allocates and "computes" all of `tokens` for a new sequence, as the scheduler would.
SeqBlocks run_sequence(BlockManager& bm, const std::vector<int32_t>& tokens) {
  SeqBlocks seq;
  auto cached = bm.match_prefix(seq, tokens, "");
  EXPECT_TRUE(bm.allocate(seq, int(tokens.size()), cached));
  bm.cache_full_blocks(seq, tokens, int(tokens.size()), "");
  return seq;
}

TEST(BlockManager, SecondSequenceReusesTheSharedPrefix) {
  BlockManager bm(config(16));
  auto a_tokens = iota_tokens(10);  // 2 full blocks + 2 tokens
  SeqBlocks a = run_sequence(bm, a_tokens);
  EXPECT_EQ(a.table.size(), 3u);
  EXPECT_EQ(bm.prefix_cache().num_cached_blocks(), 2);

  auto b_tokens = a_tokens;
  b_tokens[9] = 7;  // same first 9 tokens
  SeqBlocks b;
  auto cached = bm.match_prefix(b, b_tokens, "");
  ASSERT_EQ(cached, (std::vector<int>{a.table[0], a.table[1]}));
  ASSERT_TRUE(bm.allocate(b, 10, cached));
  EXPECT_EQ(bm.pool().ref_count(a.table[0]), 2);
  EXPECT_NE(b.table[2], a.table[2]);
  EXPECT_EQ(bm.num_used_blocks(), 4);

  SeqBlocks salted;  // another extra key (cache salt) shares nothing
  EXPECT_TRUE(bm.match_prefix(salted, b_tokens, "other-salt").empty());
}

TEST(BlockManager, NeverServesTheLastTokenFromTheCache) {
  BlockManager bm(config(16));
  auto tokens = iota_tokens(8);  // exactly 2 full blocks
  SeqBlocks a = run_sequence(bm, tokens);
  EXPECT_EQ(bm.prefix_cache().num_cached_blocks(), 2);
  SeqBlocks b;
  EXPECT_EQ(bm.match_prefix(b, tokens, "").size(), 1u);  // 7 tokens at most -> 1 block
  auto longer = iota_tokens(9);
  SeqBlocks c;
  EXPECT_EQ(bm.match_prefix(c, longer, "").size(), 2u);
}

TEST(BlockManager, FreedCachedBlocksAreHitThenEvictedInLruOrder) {
  BlockManager bm(config(4));
  SeqBlocks a = run_sequence(bm, iota_tokens(8, 100));  // blocks 0, 1 cached
  bm.free(a);
  EXPECT_EQ(bm.num_used_blocks(), 0);
  EXPECT_EQ(bm.num_free_blocks(), 4);
  EXPECT_EQ(bm.prefix_cache().num_cached_blocks(), 2);

  // A hit revives the freed blocks.
  SeqBlocks b;
  auto hit_tokens = iota_tokens(9, 100);
  auto cached = bm.match_prefix(b, hit_tokens, "");
  ASSERT_EQ(cached.size(), 2u);
  ASSERT_TRUE(bm.allocate(b, 9, cached));
  EXPECT_EQ(bm.num_used_blocks(), 3);
  bm.free(b);

  // Unrelated sequences use uncached blocks first, then evict the oldest cached block: the
  // chain's tail (freed first), so the shared prefix survives longest.
  SeqBlocks c;
  ASSERT_TRUE(bm.allocate(c, 4));
  EXPECT_EQ(bm.prefix_cache().evictions(), 0u);
  ASSERT_TRUE(bm.allocate(c, 8));
  EXPECT_EQ(bm.prefix_cache().evictions(), 0u);
  ASSERT_TRUE(bm.allocate(c, 12));
  EXPECT_EQ(bm.prefix_cache().evictions(), 1u);
  SeqBlocks d;
  EXPECT_EQ(bm.match_prefix(d, hit_tokens, "").size(), 1u);  // block 0 of the chain is left
  EXPECT_FALSE(bm.allocate(c, 20));                          // needs 2 more, 1 free
  EXPECT_EQ(c.table.size(), 3u);                             // unchanged
  bm.free(c);
  EXPECT_EQ(bm.num_used_blocks(), 0);
}

TEST(BlockManager, AllocateCountsRevivedCachedBlocksAgainstFreeSpace) {
  BlockManager bm(config(3));
  SeqBlocks a = run_sequence(bm, iota_tokens(9));  // 3 blocks, 2 cached
  bm.free(a);
  SeqBlocks b;
  auto cached = bm.match_prefix(b, iota_tokens(9), "");
  ASSERT_EQ(cached.size(), 2u);
  EXPECT_FALSE(bm.allocate(b, 13, cached));  // 2 revived + 2 fresh > 3 free
  EXPECT_TRUE(b.table.empty());
  EXPECT_EQ(bm.num_used_blocks(), 0);
  EXPECT_TRUE(bm.allocate(b, 12, cached));
  EXPECT_EQ(bm.prefix_cache().evictions(), 0u);  // the fresh block was the uncached one
}

TEST(BlockManager, DisabledPrefixCachingNeverHitsOrCaches) {
  BlockManager bm(config(8, PrefixCaching::kDisabled));
  SeqBlocks a = run_sequence(bm, iota_tokens(12));
  EXPECT_EQ(bm.prefix_cache().num_cached_blocks(), 0);
  SeqBlocks b;
  EXPECT_TRUE(bm.match_prefix(b, iota_tokens(12), "").empty());
  bm.free(a);
  EXPECT_EQ(bm.num_used_blocks(), 0);
}

}  // namespace
}  // namespace tandem
