// TransferBuffer: page-granular allocation, contiguous placement when possible and per-chunk
// placement when fragmented, all-or-nothing refusal when full, release on load/abort, expiry on
// timeout, and occupancy counters that return to zero.
#include "transfer/transfer_buffer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/error.h"

namespace tandem {
namespace {

using Clock = TransferBuffer::Clock;
using std::chrono::seconds;

constexpr uint64_t kPage = 4096;
const Clock::time_point kT0 = Clock::time_point() + seconds(1000);

std::vector<uint64_t> sizes(std::initializer_list<uint64_t> s) { return s; }

TEST(TransferBuffer, RejectsBadGeometry) {
  EXPECT_THROW(TransferBuffer(1 << 20, 3000), Error);
  EXPECT_THROW(TransferBuffer(100, kPage), Error);
  EXPECT_EQ(TransferBuffer(kPage * 10 + 100, kPage).stats().capacity_bytes, kPage * 10);
}

TEST(TransferBuffer, RejectsBadRequests) {
  TransferBuffer buffer(kPage * 4, kPage);
  EXPECT_THROW((void)buffer.allocate("", sizes({1}), kT0), Error);
  EXPECT_THROW((void)buffer.allocate("r", {}, kT0), Error);
  EXPECT_THROW((void)buffer.allocate("r", sizes({1, 0}), kT0), Error);
}

TEST(TransferBuffer, ChunksOfARequestAreContiguous) {
  TransferBuffer buffer(kPage * 16, kPage);
  auto offsets = buffer.allocate("r1", sizes({1024, 1024, 1000}), kT0);
  ASSERT_TRUE(offsets);
  EXPECT_EQ(*offsets, (std::vector<uint64_t>{0, 1024, 2048}));
  ASSERT_EQ(buffer.ranges("r1").size(), 1u);
  EXPECT_EQ(buffer.ranges("r1")[0].bytes, kPage);  // 3048 bytes round up to one page
  auto second = buffer.allocate("r2", sizes({kPage + 1}), kT0);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->front(), kPage);
  TransferBufferStats s = buffer.stats();
  EXPECT_EQ(s.used_bytes, 3 * kPage);
  EXPECT_EQ(s.live_requests, 2u);
  EXPECT_EQ(s.allocations, 2u);
}

TEST(TransferBuffer, ChunkStartsAreAligned) {
  TransferBuffer buffer(kPage * 4, kPage);
  auto offsets = buffer.allocate("r", sizes({100, 300, 1}), kT0);
  ASSERT_TRUE(offsets);
  EXPECT_EQ(*offsets, (std::vector<uint64_t>{0, 256, 768}));
}

TEST(TransferBuffer, FullBufferRefusesAndReservesNothing) {
  TransferBuffer buffer(kPage * 4, kPage);
  ASSERT_TRUE(buffer.allocate("a", sizes({3 * kPage}), kT0));
  EXPECT_FALSE(buffer.allocate("b", sizes({kPage, kPage}), kT0));
  EXPECT_FALSE(buffer.allocate("c", sizes({5 * kPage}), kT0));  // larger than the whole buffer
  TransferBufferStats s = buffer.stats();
  EXPECT_EQ(s.used_bytes, 3 * kPage);
  EXPECT_EQ(s.failed_allocations, 2u);
  EXPECT_EQ(s.live_requests, 1u);
  EXPECT_TRUE(buffer.ranges("b").empty());
  ASSERT_TRUE(buffer.allocate("b", sizes({kPage}), kT0));
  EXPECT_EQ(buffer.stats().used_bytes, 4 * kPage);
}

TEST(TransferBuffer, FragmentedBufferPlacesChunksSeparately) {
  TransferBuffer buffer(kPage * 6, kPage);
  for (const char* id : {"a", "b", "c", "d", "e", "f"}) {
    ASSERT_TRUE(buffer.allocate(id, sizes({kPage}), kT0));
  }
  buffer.release("b");
  buffer.release("d");
  buffer.release("f");
  EXPECT_EQ(buffer.stats().largest_free_run, kPage);
  auto offsets = buffer.allocate("g", sizes({kPage, kPage, kPage}), kT0);
  ASSERT_TRUE(offsets);
  EXPECT_EQ(*offsets, (std::vector<uint64_t>{kPage, 3 * kPage, 5 * kPage}));
  EXPECT_EQ(buffer.ranges("g").size(), 3u);
  EXPECT_EQ(buffer.stats().used_bytes, 6 * kPage);
}

TEST(TransferBuffer, PartialPerChunkPlacementIsRolledBack) {
  TransferBuffer buffer(kPage * 4, kPage);
  ASSERT_TRUE(buffer.allocate("a", sizes({kPage}), kT0));
  ASSERT_TRUE(buffer.allocate("b", sizes({kPage}), kT0));
  buffer.release("a");  // free: page 0 and pages 2-3
  EXPECT_FALSE(buffer.allocate("c", sizes({2 * kPage, 2 * kPage}), kT0));
  EXPECT_EQ(buffer.stats().used_bytes, kPage);
  EXPECT_EQ(buffer.stats().largest_free_run, 2 * kPage);
}

TEST(TransferBuffer, ReleaseCoalescesBackToOneRun) {
  TransferBuffer buffer(kPage * 8, kPage);
  for (const char* id : {"a", "b", "c", "d"}) {
    ASSERT_TRUE(buffer.allocate(id, sizes({2 * kPage}), kT0));
  }
  for (const char* id : {"b", "d", "a", "c"}) EXPECT_TRUE(buffer.release(id));
  EXPECT_FALSE(buffer.release("a"));
  TransferBufferStats s = buffer.stats();
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.largest_free_run, 8 * kPage);
  EXPECT_EQ(s.released_requests, 4u);
  EXPECT_EQ(s.peak_used_bytes, 8 * kPage);
}

TEST(TransferBuffer, RepeatedAllocationsAccumulateUnderOneRequest) {
  TransferBuffer buffer(kPage * 8, kPage);
  ASSERT_TRUE(buffer.allocate("r", sizes({kPage}), kT0));
  ASSERT_TRUE(buffer.allocate("r", sizes({kPage}), kT0 + seconds(5)));
  EXPECT_EQ(buffer.ranges("r").size(), 2u);
  EXPECT_EQ(buffer.stats().live_requests, 1u);
  EXPECT_TRUE(buffer.release_expired(kT0 + seconds(4)).empty());  // the later deadline holds
  EXPECT_EQ(buffer.release_expired(kT0 + seconds(5)), std::vector<std::string>{"r"});
  EXPECT_EQ(buffer.stats().used_bytes, 0u);
}

TEST(TransferBuffer, ExpiredRequestsAreFreed) {
  TransferBuffer buffer(kPage * 8, kPage);
  ASSERT_TRUE(buffer.allocate("early", sizes({kPage}), kT0 + seconds(1)));
  ASSERT_TRUE(buffer.allocate("late", sizes({kPage}), kT0 + seconds(30)));
  ASSERT_TRUE(buffer.allocate("moved", sizes({kPage}), kT0 + seconds(1)));
  EXPECT_TRUE(buffer.set_deadline("moved", kT0 + seconds(60)));
  EXPECT_FALSE(buffer.set_deadline("absent", kT0));
  EXPECT_TRUE(buffer.release_expired(kT0).empty());
  EXPECT_EQ(buffer.release_expired(kT0 + seconds(30)), (std::vector<std::string>{"early", "late"}));
  TransferBufferStats s = buffer.stats();
  EXPECT_EQ(s.expired_requests, 2u);
  EXPECT_EQ(s.live_requests, 1u);
  EXPECT_EQ(s.used_bytes, kPage);
}

TEST(TransferBuffer, RandomWorkloadNeverOverlapsAndReturnsToZero) {
  TransferBuffer buffer(kPage * 64, kPage);
  std::mt19937 rng(7);
  std::vector<std::string> live;
  for (int step = 0; step < 3000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      std::string id = "r" + std::to_string(step);
      std::vector<uint64_t> chunk_sizes(1 + rng() % 4);
      for (uint64_t& s : chunk_sizes) s = 1 + rng() % (3 * kPage);
      if (buffer.allocate(id, chunk_sizes, kT0)) live.push_back(id);
    } else {
      size_t victim = rng() % live.size();
      EXPECT_TRUE(buffer.release(live[victim]));
      live.erase(live.begin() + victim);
    }
    std::vector<TransferBuffer::Range> all;
    for (const std::string& id : live) {
      for (const auto& r : buffer.ranges(id)) all.push_back(r);
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
    uint64_t used = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      EXPECT_EQ(all[i].offset % kPage, 0u);
      EXPECT_LE(all[i].offset + all[i].bytes, 64 * kPage);
      if (i > 0) {
        ASSERT_LE(all[i - 1].offset + all[i - 1].bytes, all[i].offset);
      }
      used += all[i].bytes;
    }
    ASSERT_EQ(buffer.stats().used_bytes, used);
  }
  buffer.release_expired(kT0);
  TransferBufferStats s = buffer.stats();
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.live_requests, 0u);
  EXPECT_EQ(s.largest_free_run, 64 * kPage);
  EXPECT_GT(s.failed_allocations, 0u);
}

}  // namespace
}  // namespace tandem
