// BlockPool: reference counts, the free queue's order, exhaustion and misuse errors.
#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace tandem {
namespace {

TEST(BlockPool, StartsAllFreeInIdOrder) {
  BlockPool pool(4);
  EXPECT_EQ(pool.num_blocks(), 4);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(pool.num_used(), 0);
  EXPECT_EQ(pool.free_queue(), (std::vector<int>{0, 1, 2, 3}));
}

TEST(BlockPool, AllocateUntilExhaustedThenThrows) {
  BlockPool pool(3);
  EXPECT_EQ(pool.allocate(), 0);
  EXPECT_EQ(pool.allocate(), 1);
  EXPECT_EQ(pool.allocate(), 2);
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(pool.num_used(), 3);
  EXPECT_THROW((void)pool.allocate(), Error);
}

TEST(BlockPool, SharedBlockIsFreedByItsLastReference) {
  BlockPool pool(2);
  int b = pool.allocate();
  pool.acquire(b);  // a second sequence shares it
  EXPECT_EQ(pool.ref_count(b), 2);
  pool.release(b, FreeOrder::kEvictLast);
  EXPECT_EQ(pool.ref_count(b), 1);
  EXPECT_EQ(pool.num_free(), 1);
  pool.release(b, FreeOrder::kEvictLast);
  EXPECT_EQ(pool.ref_count(b), 0);
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(BlockPool, ReleaseOrderDecidesReuse) {
  BlockPool pool(4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(pool.allocate(), i);
  pool.release(0, FreeOrder::kEvictLast);
  pool.release(1, FreeOrder::kEvictLast);
  pool.release(2, FreeOrder::kReuseFirst);
  pool.release(3, FreeOrder::kReuseFirst);
  EXPECT_EQ(pool.free_queue(), (std::vector<int>{3, 2, 0, 1}));
  EXPECT_EQ(pool.allocate(), 3);
  EXPECT_EQ(pool.allocate(), 2);
  EXPECT_EQ(pool.allocate(), 0);  // then the least recently freed cached block
}

TEST(BlockPool, AcquireRevivesAFreeBlockFromTheMiddleOfTheQueue) {
  BlockPool pool(4);
  pool.acquire(2);
  EXPECT_EQ(pool.ref_count(2), 1);
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_EQ(pool.free_queue(), (std::vector<int>{0, 1, 3}));
  pool.release(2, FreeOrder::kEvictLast);
  EXPECT_EQ(pool.free_queue(), (std::vector<int>{0, 1, 3, 2}));
}

TEST(BlockPool, MisuseIsAClearError) {
  EXPECT_THROW(BlockPool(0), Error);
  BlockPool pool(2);
  EXPECT_THROW(pool.release(0, FreeOrder::kReuseFirst), Error);  // not allocated
  EXPECT_THROW(pool.acquire(2), Error);
  EXPECT_THROW(pool.acquire(-1), Error);
  EXPECT_THROW((void)pool.ref_count(7), Error);
  try {
    pool.acquire(5);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block id 5"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem
