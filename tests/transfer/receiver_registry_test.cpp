// ReceiverRegistry, the decoder's bookkeeping: allocation (room, already present, full, refused),
// completion making chunks loadable, the longest-prefix walk, and freeing on load, Abort,
// abandonment (the client left) and timeout — after which the buffer is back to zero bytes used.
#include "transfer/receiver_registry.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

using namespace std::chrono_literals;
using Clock = ReceiverRegistry::Clock;

constexpr uint64_t kRegistryPage = 4096;
const LayoutFingerprint kRegistryLayout = {1, 2, 3};

BlockHash registry_key(int i) {
  BlockHash h;
  h.bytes[0] = uint8_t(i);
  h.bytes[1] = 0x5A;
  return h;
}

AllocRequest request(const std::string& id, std::vector<int> keys, uint64_t bytes = 5000) {
  AllocRequest r{id, kRegistryLayout, {}};
  for (int k : keys) r.chunks.push_back({registry_key(k), 16, bytes});
  return r;
}

TransferDone done(const std::string& id, std::vector<int> keys) {
  TransferDone d{id, {}};
  for (int k : keys) d.chunks.push_back(registry_key(k));
  return d;
}

// How many leading chunks of `keys` are loadable.
int ready_prefix(const ReceiverRegistry& r, std::vector<int> keys) {
  std::vector<BlockHash> hashes;
  for (int k : keys) hashes.push_back(registry_key(k));
  return r.visit_ready_prefix(hashes, [](size_t, const ChunkLocation&) { return true; });
}

TEST(ReceiverRegistry, AllocatesCompletesAndFreesOnLoad) {
  ReceiverRegistry r(16 * kRegistryPage, kRegistryPage, kRegistryLayout, 30s);
  AllocResponse a = r.allocate(request("a", {1, 2, 3}), Clock::now());
  ASSERT_EQ(a.status, AllocStatus::kOk) << a.message;
  ASSERT_EQ(a.slots.size(), 3u);
  for (const ChunkSlot& s : a.slots) EXPECT_EQ(s.placement, ChunkPlacement::kWrite);
  EXPECT_NE(a.slots[0].offset, a.slots[1].offset);
  EXPECT_GT(r.stats().buffer.used_bytes, 0u);

  EXPECT_EQ(ready_prefix(r, {1, 2, 3}), 0) << "not loadable before TransferDone";
  EXPECT_TRUE(r.complete(done("a", {1, 2, 3})));
  EXPECT_EQ(ready_prefix(r, {1, 2, 3}), 3);
  EXPECT_EQ(ready_prefix(r, {1, 9, 3}), 1) << "the walk stops at the first missing chunk";
  EXPECT_EQ(ready_prefix(r, {2, 3}), 2);

  std::vector<BlockHash> hashes = {registry_key(1), registry_key(2)};
  std::vector<uint64_t> offsets;
  r.visit_ready_prefix(hashes, [&](size_t i, const ChunkLocation& c) {
    EXPECT_EQ(c.num_tokens, 16u);
    EXPECT_EQ(c.num_bytes, 5000u);
    EXPECT_EQ(c.offset, a.slots[i].offset);
    offsets.push_back(c.offset);
    return true;
  });
  EXPECT_EQ(offsets.size(), 2u);

  EXPECT_TRUE(r.release("a"));  // loaded
  EXPECT_FALSE(r.release("a"));
  EXPECT_EQ(ready_prefix(r, {1}), 0);
  ReceiverRegistryStats s = r.stats();
  EXPECT_EQ(s.buffer.used_bytes, 0u);
  EXPECT_EQ(s.ready_chunks, 0u);
  EXPECT_EQ(s.transfers_received, 1u);
}

TEST(ReceiverRegistry, ChunksItHoldsAreAlreadyPresent) {
  ReceiverRegistry r(16 * kRegistryPage, kRegistryPage, kRegistryLayout, 30s);
  ASSERT_EQ(r.allocate(request("a", {1, 2}), Clock::now()).status, AllocStatus::kOk);
  // Not yet arrived: a second request for the same chunks must write its own copy.
  AllocResponse pending = r.allocate(request("b", {1}), Clock::now());
  ASSERT_EQ(pending.status, AllocStatus::kOk);
  EXPECT_EQ(pending.slots[0].placement, ChunkPlacement::kWrite);
  r.complete(done("a", {1, 2}));
  r.release("b");

  AllocResponse c = r.allocate(request("c", {1, 2, 3}), Clock::now());
  ASSERT_EQ(c.status, AllocStatus::kOk);
  EXPECT_EQ(c.slots[0].placement, ChunkPlacement::kAlreadyPresent);
  EXPECT_EQ(c.slots[0].offset, 0u);
  EXPECT_EQ(c.slots[1].placement, ChunkPlacement::kAlreadyPresent);
  EXPECT_EQ(c.slots[2].placement, ChunkPlacement::kWrite);
  // A chunk of the same registry_key but another size is not the same chunk.
  AllocResponse d = r.allocate(request("d", {1}, 6000), Clock::now());
  EXPECT_EQ(d.slots[0].placement, ChunkPlacement::kWrite);
  // Everything present: no pages at all.
  uint64_t used = r.stats().buffer.used_bytes;
  AllocResponse e = r.allocate(request("e", {1, 2}), Clock::now());
  ASSERT_EQ(e.status, AllocStatus::kOk);
  EXPECT_EQ(r.stats().buffer.used_bytes, used);
  EXPECT_FALSE(r.complete(done("e", {1, 2})));

  for (const char* id : {"a", "c", "d"}) EXPECT_TRUE(r.release(id)) << id;
  EXPECT_EQ(r.stats().buffer.used_bytes, 0u);
  EXPECT_EQ(r.stats().ready_chunks, 0u);
}

TEST(ReceiverRegistry, FullThenRoomAfterAbort) {
  ReceiverRegistry r(4 * kRegistryPage, kRegistryPage, kRegistryLayout, 30s);
  ASSERT_EQ(r.allocate(request("a", {1, 2, 3}, kRegistryPage), Clock::now()).status,
            AllocStatus::kOk);
  AllocResponse full = r.allocate(request("b", {4, 5}, kRegistryPage), Clock::now());
  EXPECT_EQ(full.status, AllocStatus::kFull);
  EXPECT_TRUE(full.slots.empty());
  EXPECT_NE(full.message.find("full"), std::string::npos) << full.message;
  EXPECT_TRUE(r.release("a"));  // Abort
  EXPECT_EQ(r.allocate(request("b", {4, 5}, kRegistryPage), Clock::now()).status, AllocStatus::kOk);
  EXPECT_TRUE(r.release("b"));
  EXPECT_EQ(r.stats().buffer.used_bytes, 0u);
}

TEST(ReceiverRegistry, RefusesForeignLayoutsAndOversizedRequests) {
  ReceiverRegistry r(4 * kRegistryPage, kRegistryPage, kRegistryLayout, 30s);
  AllocRequest foreign = request("a", {1});
  foreign.layout_fingerprint[0] ^= 1;
  AllocResponse e = r.allocate(foreign, Clock::now());
  EXPECT_EQ(e.status, AllocStatus::kError);
  EXPECT_NE(e.message.find("fingerprint"), std::string::npos) << e.message;
  AllocResponse big = r.allocate(request("b", {1}, 5 * kRegistryPage), Clock::now());
  EXPECT_EQ(big.status, AllocStatus::kError) << "can never fit: retrying would not help";
  EXPECT_NE(big.message.find("pd_buffer_size"), std::string::npos) << big.message;
  EXPECT_EQ(r.stats().buffer.used_bytes, 0u);
}

TEST(ReceiverRegistry, TellsWritingFromDoneAndFreesLostWrites) {
  ReceiverRegistry r(16 * kRegistryPage, kRegistryPage, kRegistryLayout, 30s);
  EXPECT_FALSE(r.is_writing("a"));
  ASSERT_EQ(r.allocate(request("a", {1}), Clock::now()).status, AllocStatus::kOk);
  ASSERT_EQ(r.allocate(request("b", {2}), Clock::now()).status, AllocStatus::kOk);
  EXPECT_TRUE(r.is_writing("a"));
  r.complete(done("a", {1}));
  EXPECT_FALSE(r.is_writing("a"));
  EXPECT_FALSE(r.release_if_writing("a")) << "arrived: kept for its decode request";
  EXPECT_TRUE(r.release_if_writing("b")) << "its sender went away before TransferDone";
  EXPECT_FALSE(r.is_writing("b"));
  EXPECT_EQ(ready_prefix(r, {1}), 1);
  EXPECT_TRUE(r.release("a"));
  EXPECT_EQ(r.stats().buffer.used_bytes, 0u);
}

TEST(ReceiverRegistry, ReapsWhatWasNotLoadedInTime) {
  ReceiverRegistry r(16 * kRegistryPage, kRegistryPage, kRegistryLayout, 100ms);
  auto t0 = Clock::now();
  ASSERT_EQ(r.allocate(request("old", {1}), t0).status, AllocStatus::kOk);
  r.complete(done("old", {1}));
  ASSERT_EQ(r.allocate(request("new", {2}), t0 + 80ms).status, AllocStatus::kOk);
  EXPECT_TRUE(r.reap(t0 + 50ms).empty());
  EXPECT_EQ(r.reap(t0 + 120ms), std::vector<std::string>{"old"});
  EXPECT_EQ(ready_prefix(r, {1}), 0);
  EXPECT_EQ(r.reap(t0 + 200ms), std::vector<std::string>{"new"});
  EXPECT_EQ(r.stats().buffer.used_bytes, 0u);
  EXPECT_EQ(r.stats().buffer.expired_requests, 2u);
}

// The proxy's client left: pages whose bytes are all in go at once; pages still being written
// go when their TransferDone arrives (not before: the sender may still be putting into them);
// and the id cannot allocate again.
TEST(ReceiverRegistry, AnAbandonedTransferIsFreedAtOnceOrOnItsTransferDone) {
  ReceiverRegistry r(16 * kRegistryPage, kRegistryPage, kRegistryLayout, 30s);
  ASSERT_EQ(r.allocate(request("done", {1, 2}), Clock::now()).status, AllocStatus::kOk);
  ASSERT_TRUE(r.complete(done("done", {1, 2})));
  ASSERT_EQ(r.allocate(request("writing", {3}), Clock::now()).status, AllocStatus::kOk);
  uint64_t writing_bytes = 2 * kRegistryPage;  // one 5000-byte chunk

  EXPECT_TRUE(r.abandon("done", Clock::now()));
  EXPECT_EQ(ready_prefix(r, {1, 2}), 0);
  EXPECT_EQ(r.stats().buffer.used_bytes, writing_bytes);

  EXPECT_TRUE(r.abandon("writing", Clock::now()));
  EXPECT_EQ(r.stats().buffer.used_bytes, writing_bytes) << "freed while its sender writes";
  EXPECT_FALSE(r.complete(done("writing", {3})));
  EXPECT_EQ(ready_prefix(r, {3}), 0);
  EXPECT_EQ(r.stats().buffer.used_bytes, 0u);

  AllocResponse again = r.allocate(request("writing", {3}), Clock::now());
  EXPECT_EQ(again.status, AllocStatus::kError);
  EXPECT_NE(again.message.find("aborted"), std::string::npos) << again.message;
  EXPECT_FALSE(r.abandon("never-seen", Clock::now()));
  EXPECT_EQ(r.allocate(request("writing", {3}), Clock::now() + 31s).status, AllocStatus::kOk)
      << "refused for the transfer timeout only";
}

// An abort leaves a tombstone (the id is refused for the transfer timeout); the periodic reap
// drops the expired ones even when no further abort comes.
TEST(ReceiverRegistry, ReapDropsExpiredAbortTombstones) {
  ReceiverRegistry r(16 * kRegistryPage, kRegistryPage, kRegistryLayout, 100ms);
  Clock::time_point t0 = Clock::now();
  for (const char* id : {"a", "b", "c"}) EXPECT_FALSE(r.abandon(id, t0));
  EXPECT_EQ(r.stats().abandoned_ids, 3u);
  r.reap(t0 + 50ms);
  EXPECT_EQ(r.stats().abandoned_ids, 3u) << "still within the timeout";
  r.reap(t0 + 150ms);
  EXPECT_EQ(r.stats().abandoned_ids, 0u);
}

}  // namespace
}  // namespace tandem
