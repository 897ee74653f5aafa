// DiskChunkTier: KV chunks as files in one directory (LMCache's local_disk), bounded by
// max_local_disk_size with least-recently-used eviction, and persistent: at start-up it indexes
// the chunk files already there (oldest modified = least recently used), deleting leftover
// temporary files and files that are torn or truncated. Every read checks the whole file
// (chunk_file.h); a file that fails is deleted and reported as a miss, so the caller recomputes.
// Files of another model or layout are left alone and never read. Thread-safe: the store's
// writer thread writes while the engine thread reads; one process per directory.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <list>
#include <mutex>
#include <unordered_map>

#include "kv/block_hash.h"
#include "kvstore/chunk_tier_stats.h"
#include "kvstore/stored_chunk.h"

namespace tandem {

class DiskChunkTier {
 public:
  // Creates `dir` if needed and indexes it. Throws tandem::Error naming the directory when it
  // cannot be created or read.
  DiskChunkTier(std::filesystem::path dir, uint64_t limit_bytes,
                const std::array<uint8_t, 16>& layout);

  // The chunk read from its file, or null (absent, or its file failed a check and was deleted);
  // counts a lookup.
  ChunkPtr get(const BlockHash& key);
  [[nodiscard]] bool contains(const BlockHash& key) const;
  // Writes the chunk's file unless present, evicting least recently used files until it fits;
  // false when it was not stored (larger than the limit, or the write failed: logged).
  bool put(const BlockHash& key, const StoredChunk& chunk);
  void record_hit_tokens(uint64_t tokens);
  [[nodiscard]] ChunkTierStats stats() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  struct Entry {
    uint64_t file_bytes = 0;
    std::list<BlockHash>::iterator lru_at;
  };

  void index_existing_files();
  // Forgets `key` (if indexed) and deletes its file; mutex_ held. By value: callers pass
  // lru_.front(), a reference into the node this erases.
  void drop_locked(BlockHash key);
  std::filesystem::path path_of(const BlockHash& key) const;

  std::filesystem::path dir_;
  std::array<uint8_t, 16> layout_;
  mutable std::mutex mutex_;
  std::unordered_map<BlockHash, Entry, BlockHashHasher> entries_;
  std::list<BlockHash> lru_;  // least recently used first
  ChunkTierStats stats_;      // bytes_used counts files being written too
};

}  // namespace tandem
