// ChunkStore: the KV chunk tiers below the engine's own paged cache — a CPU tier (local_cpu)
// and a disk tier (local_disk) — behind one get/put. get() looks in the CPU tier, then on disk
// (a disk hit is copied into the CPU tier, so a chunk read twice is read from disk once). put()
// stores into the CPU tier at once (the bytes are already gathered, so this is a map insert)
// and queues the disk write for the store's writer thread, so prefill never waits for a disk.
#pragma once
#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "kvstore/chunk_tier_stats.h"
#include "kvstore/cpu_chunk_tier.h"
#include "kvstore/disk_chunk_tier.h"

namespace tandem {

struct ChunkStoreConfig {
  uint64_t cpu_bytes = 0;                         // 0: no CPU tier
  std::optional<std::filesystem::path> disk_dir;  // nullopt: no disk tier
  uint64_t disk_bytes = 0;
  // Chunk bytes waiting for the disk writer; beyond this a put skips the disk (counted).
  uint64_t max_pending_write_bytes = uint64_t(256) << 20;
};

enum class ChunkTier { kCpu, kDisk };

class ChunkStore {
 public:
  // `layout` (LayoutFingerprint) is written into and checked against every chunk file. Throws
  // tandem::Error when the disk directory cannot be used.
  ChunkStore(const ChunkStoreConfig& config, const std::array<uint8_t, 16>& layout);
  ~ChunkStore();  // finishes the queued disk writes
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;

  struct Found {
    ChunkPtr chunk;
    ChunkTier tier;
  };
  // The chunk from the first tier that has it (counting a lookup in each tier asked), or
  // nullopt.
  std::optional<Found> get(const BlockHash& key);
  // Whether some tier holds `key` (no file is read).
  [[nodiscard]] bool contains(const BlockHash& key) const;
  void put(const BlockHash& key, ChunkPtr chunk);
  void record_hit_tokens(ChunkTier tier, uint64_t tokens);
  // Waits until every queued disk write is done (tests, benchmarks).
  void flush();
  [[nodiscard]] KvTierStats stats() const;

 private:
  void write_loop();

  ChunkStoreConfig config_;
  std::unique_ptr<CpuChunkTier> cpu_;    // null: local_cpu off
  std::unique_ptr<DiskChunkTier> disk_;  // null: no local_disk

  mutable std::mutex mutex_;  // guards the write queue and dropped_writes_
  std::condition_variable cv_;
  std::deque<std::pair<BlockHash, ChunkPtr>> queue_;
  std::unordered_set<BlockHash, BlockHashHasher> queued_;
  uint64_t queued_bytes_ = 0;
  bool writing_ = false;  // the writer holds a chunk it took off the queue
  bool stopping_ = false;
  uint64_t dropped_writes_ = 0;
  std::thread writer_;
};

}  // namespace tandem
