// The CPU and disk tiers and the store over them: LRU eviction that never lets bytes used pass
// the limit (500 distinct chunks through each tier), the disk tier found again by a new
// process-lifetime object (a restart), files damaged or deleted behind the tier's back deleted
// and reported as misses, leftover temporary files cleared, another layout's files left alone,
// and disk hits copied into the CPU tier.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "kvstore/chunk_file.h"
#include "kvstore/chunk_store.h"
#include "test_support.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;

const std::array<uint8_t, 16> kTierLayout = root_block_hash("layout").bytes;

BlockHash tier_key_of(int n) { return root_block_hash("chunk" + std::to_string(n)); }

ChunkPtr chunk_of(int n, size_t bytes = 1000) {
  auto c = std::make_shared<StoredChunk>();
  c->num_tokens = uint32_t(n % 50 + 1);
  c->bytes.resize(bytes);
  for (size_t i = 0; i < bytes; ++i) c->bytes[i] = uint8_t(i * 13 + size_t(n));
  return c;
}

TEST(CpuChunkTier, EvictsLeastRecentlyUsedWithinTheLimit) {
  CpuChunkTier tier(3000);
  ASSERT_TRUE(tier.put(tier_key_of(1), chunk_of(1)));
  ASSERT_TRUE(tier.put(tier_key_of(2), chunk_of(2)));
  ASSERT_TRUE(tier.put(tier_key_of(3), chunk_of(3)));
  ASSERT_TRUE(tier.get(tier_key_of(1)));  // 2 is now the least recently used
  ASSERT_TRUE(tier.put(tier_key_of(4), chunk_of(4)));
  EXPECT_TRUE(tier.contains(tier_key_of(1)));
  EXPECT_FALSE(tier.contains(tier_key_of(2)));
  EXPECT_TRUE(tier.contains(tier_key_of(3)));
  EXPECT_TRUE(tier.contains(tier_key_of(4)));
  ChunkTierStats s = tier.stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.bytes_used, 3000u);
  EXPECT_EQ(s.lookups, 1u);
  EXPECT_EQ(s.stored_tokens, uint64_t(2 + 3 + 4 + 5));
  EXPECT_FALSE(tier.put(tier_key_of(5), chunk_of(5, 3001)));  // larger than the whole tier
  EXPECT_EQ(tier.get(tier_key_of(1))->bytes, chunk_of(1)->bytes);
}

TEST(CpuChunkTier, FiveHundredChunksNeverPassTheLimit) {
  const uint64_t limit = 20'000;
  CpuChunkTier tier(limit);
  for (int i = 0; i < 500; ++i) {
    tier.put(tier_key_of(i), chunk_of(i, 500 + size_t(i % 7) * 300));
    ASSERT_LE(tier.stats().bytes_used, limit) << "after chunk " << i;
  }
  EXPECT_GT(tier.stats().evictions, 400u);
  EXPECT_TRUE(tier.contains(tier_key_of(499)));
}

class DiskChunkTierTest : public testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("tandem-disk-tier"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path file_of(int n) const { return dir_ / chunk_file_name(tier_key_of(n)); }

  fs::path dir_;
};

TEST_F(DiskChunkTierTest, StoresReadsAndFindsChunksAfterARestart) {
  {
    DiskChunkTier tier(dir_, 100'000, kTierLayout);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(tier.put(tier_key_of(i), *chunk_of(i)));
    ChunkPtr c = tier.get(tier_key_of(3));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->bytes, chunk_of(3)->bytes);
    EXPECT_EQ(c->num_tokens, chunk_of(3)->num_tokens);
    EXPECT_EQ(tier.stats().bytes_used, 5 * (kChunkFileHeaderBytes + 1000));
  }
  DiskChunkTier again(dir_, 100'000, kTierLayout);
  EXPECT_EQ(again.stats().bytes_used, 5 * (kChunkFileHeaderBytes + 1000));
  for (int i = 0; i < 5; ++i) {
    ChunkPtr c = again.get(tier_key_of(i));
    ASSERT_TRUE(c) << i;
    EXPECT_EQ(c->bytes, chunk_of(i)->bytes);
  }
  EXPECT_EQ(again.stats().corrupt_chunks, 0u);
}

TEST_F(DiskChunkTierTest, FiveHundredChunksNeverPassTheLimit) {
  const uint64_t limit = 30'000;
  DiskChunkTier tier(dir_, limit, kTierLayout);
  for (int i = 0; i < 500; ++i) {
    tier.put(tier_key_of(i), *chunk_of(i, 500 + size_t(i % 5) * 400));
    ASSERT_LE(tier.stats().bytes_used, limit) << "after chunk " << i;
    uint64_t on_disk = 0;
    for (const auto& e : fs::directory_iterator(dir_)) on_disk += e.file_size();
    ASSERT_LE(on_disk, limit) << "after chunk " << i;
  }
  EXPECT_GT(tier.stats().evictions, 400u);
  // A restart with a lower limit evicts the oldest files down to it.
  DiskChunkTier smaller(dir_, 5'000, kTierLayout);
  EXPECT_LE(smaller.stats().bytes_used, 5'000u);
  uint64_t on_disk = 0;
  for (const auto& e : fs::directory_iterator(dir_)) on_disk += e.file_size();
  EXPECT_LE(on_disk, 5'000u);
}

TEST_F(DiskChunkTierTest, DamagedOrDeletedFilesAreDeletedAndMissed) {
  DiskChunkTier tier(dir_, 100'000, kTierLayout);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(tier.put(tier_key_of(i), *chunk_of(i)));
  {  // corrupt one payload byte of chunk 0
    std::fstream f(file_of(0), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(kChunkFileHeaderBytes + 10));
    f.put('\x7f');
  }
  fs::resize_file(file_of(1), 300);  // truncate chunk 1
  fs::remove(file_of(2));            // delete chunk 2
  EXPECT_FALSE(tier.get(tier_key_of(0)));
  EXPECT_FALSE(tier.get(tier_key_of(1)));
  EXPECT_FALSE(tier.get(tier_key_of(2)));
  EXPECT_TRUE(tier.get(tier_key_of(3)));
  EXPECT_FALSE(fs::exists(file_of(0)));
  EXPECT_FALSE(fs::exists(file_of(1)));
  EXPECT_FALSE(tier.contains(tier_key_of(0)));
  ChunkTierStats s = tier.stats();
  EXPECT_EQ(s.corrupt_chunks, 3u);
  EXPECT_EQ(s.bytes_used, kChunkFileHeaderBytes + 1000);
  // Stored again, it reads back whole.
  ASSERT_TRUE(tier.put(tier_key_of(0), *chunk_of(0)));
  EXPECT_EQ(tier.get(tier_key_of(0))->bytes, chunk_of(0)->bytes);
}

TEST_F(DiskChunkTierTest, StartUpClearsTornFilesAndKeepsForeignOnes) {
  {
    DiskChunkTier tier(dir_, 100'000, kTierLayout);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(tier.put(tier_key_of(i), *chunk_of(i)));
  }
  fs::resize_file(file_of(0), 50);                           // torn header
  std::ofstream(file_of(9).string() + ".tmp") << "partial";  // a write cut short
  write_chunk_file(file_of(7), tier_key_of(7), root_block_hash("other model").bytes, 1,
                   chunk_of(7)->bytes);
  std::ofstream(dir_ / "notes.txt") << "not a chunk";
  DiskChunkTier tier(dir_, 100'000, kTierLayout);
  EXPECT_FALSE(fs::exists(file_of(0)));
  EXPECT_FALSE(fs::exists(file_of(9).string() + ".tmp"));
  EXPECT_TRUE(fs::exists(file_of(7)));  // another model's: not ours to delete
  EXPECT_TRUE(fs::exists(dir_ / "notes.txt"));
  EXPECT_FALSE(tier.contains(tier_key_of(7)));
  EXPECT_FALSE(tier.contains(tier_key_of(0)));
  EXPECT_TRUE(tier.contains(tier_key_of(1)));
  EXPECT_EQ(tier.stats().corrupt_chunks, 1u);
  EXPECT_EQ(tier.stats().bytes_used, 2 * (kChunkFileHeaderBytes + 1000));
}

TEST_F(DiskChunkTierTest, UnusableDirectoryIsAnError) {
  fs::path file = dir_ / "a-file";
  std::ofstream(file) << "x";
  EXPECT_THROW(DiskChunkTier(file / "sub", 1000, kTierLayout), Error);
}

TEST_F(DiskChunkTierTest, StoreWritesToDiskInTheBackgroundAndPromotesHits) {
  ChunkStoreConfig config;
  config.cpu_bytes = 2500;  // two chunks
  config.disk_dir = dir_;
  config.disk_bytes = 100'000;
  ChunkStore store(config, kTierLayout);
  for (int i = 0; i < 4; ++i) store.put(tier_key_of(i), chunk_of(i));
  store.flush();
  KvTierStats s = store.stats();
  EXPECT_TRUE(s.cpu_enabled && s.disk_enabled);
  EXPECT_EQ(s.cpu.evictions, 2u);
  EXPECT_EQ(s.disk.stored_tokens, s.cpu.stored_tokens);
  auto found = store.get(tier_key_of(0));  // evicted from the CPU tier, on disk
  ASSERT_TRUE(found);
  EXPECT_EQ(found->tier, ChunkTier::kDisk);
  EXPECT_EQ(found->chunk->bytes, chunk_of(0)->bytes);
  found = store.get(tier_key_of(0));  // copied into the CPU tier by the first read
  ASSERT_TRUE(found);
  EXPECT_EQ(found->tier, ChunkTier::kCpu);
  EXPECT_FALSE(store.get(tier_key_of(42)));
  s = store.stats();
  EXPECT_EQ(s.cpu.lookups, 3u);
  EXPECT_EQ(s.disk.lookups, 2u);
}

}  // namespace
}  // namespace tandem
