// DiskChunkTier: an in-memory index (key -> file size, LRU order) over one file per chunk.
#include "kvstore/disk_chunk_tier.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/logging.h"
#include "kvstore/chunk_file.h"

namespace tandem {
namespace fs = std::filesystem;

namespace {

// The key a "<32 hex digits>.chunk" file name spells, or nullopt.
std::optional<BlockHash> key_from_name(const std::string& name) {
  if (!name.ends_with(kChunkFileSuffix) || name.size() != 32 + kChunkFileSuffix.size()) {
    return std::nullopt;
  }
  BlockHash key;
  for (size_t i = 0; i < 16; ++i) {
    unsigned value = 0;
    for (size_t j = 0; j < 2; ++j) {
      char c = name[2 * i + j];
      int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (digit < 0) return std::nullopt;
      value = value * 16 + unsigned(digit);
    }
    key.bytes[i] = uint8_t(value);
  }
  return key;
}

void remove_quietly(const fs::path& path) {
  std::error_code ignored;
  fs::remove(path, ignored);
}

}  // namespace

DiskChunkTier::DiskChunkTier(fs::path dir, uint64_t limit_bytes,
                             const std::array<uint8_t, 16>& layout)
    : dir_(std::move(dir)), layout_(layout) {
  stats_.bytes_limit = limit_bytes;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  TANDEM_CHECK(!ec && fs::is_directory(dir_), "local_disk '{}': cannot create the directory: {}",
               dir_.string(), ec ? ec.message() : "not a directory");
  index_existing_files();
}

fs::path DiskChunkTier::path_of(const BlockHash& key) const { return dir_ / chunk_file_name(key); }

void DiskChunkTier::index_existing_files() {
  struct Found {
    BlockHash key;
    uint64_t bytes;
    fs::file_time_type mtime;
  };
  std::vector<Found> found;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(std::string(kChunkFileSuffix) + ".tmp")) {
      remove_quietly(e.path());  // a write cut short by a crash
      continue;
    }
    std::optional<BlockHash> key = key_from_name(name);
    std::error_code entry_ec;
    if (!key || !e.is_regular_file(entry_ec)) continue;  // not ours
    std::string why;
    std::optional<ChunkFileHeader> h = read_chunk_file_header(e.path(), &why);
    if (!h || h->key != *key) {
      log_warning("local_disk: deleting {}: {}", e.path().string(), h ? "key mismatch" : why);
      remove_quietly(e.path());
      ++stats_.corrupt_chunks;
      continue;
    }
    if (h->layout != layout_) continue;  // another model's cache sharing the directory
    fs::file_time_type mtime = e.last_write_time(entry_ec);
    found.push_back({*key, kChunkFileHeaderBytes + h->payload_bytes, mtime});
  }
  TANDEM_CHECK(!ec, "local_disk '{}': cannot list the directory: {}", dir_.string(), ec.message());
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.mtime < b.mtime; });
  for (const Found& f : found) {
    lru_.push_back(f.key);
    entries_.emplace(f.key, Entry{f.bytes, std::prev(lru_.end())});
    stats_.bytes_used += f.bytes;
  }
  while (stats_.bytes_used > stats_.bytes_limit && !lru_.empty()) {  // the limit was lowered
    drop_locked(lru_.front());
    ++stats_.evictions;
  }
  log_info("local_disk {}: {} chunks ({:.1f} MiB) found, limit {:.1f} MiB", dir_.string(),
           entries_.size(), double(stats_.bytes_used) / (1 << 20),
           double(stats_.bytes_limit) / (1 << 20));
}

void DiskChunkTier::drop_locked(BlockHash key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  stats_.bytes_used -= it->second.file_bytes;
  lru_.erase(it->second.lru_at);
  entries_.erase(it);
  remove_quietly(path_of(key));
}

ChunkPtr DiskChunkTier::get(const BlockHash& key) {
  {
    std::lock_guard lock(mutex_);
    ++stats_.lookups;
    auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    lru_.splice(lru_.end(), lru_, it->second.lru_at);
  }
  // Read outside the lock: the writer thread may evict (unlink) meanwhile, which only turns
  // this read into a miss.
  std::string why;
  std::optional<StoredChunk> chunk = read_chunk_file(path_of(key), key, layout_, &why);
  if (!chunk) {
    std::lock_guard lock(mutex_);
    if (entries_.contains(key)) {
      log_warning("local_disk: deleting {}: {}; its tokens are recomputed", path_of(key).string(),
                  why);
      drop_locked(key);
      ++stats_.corrupt_chunks;
    }
    return nullptr;
  }
  return std::make_shared<const StoredChunk>(std::move(*chunk));
}

bool DiskChunkTier::contains(const BlockHash& key) const {
  std::lock_guard lock(mutex_);
  return entries_.contains(key);
}

bool DiskChunkTier::put(const BlockHash& key, const StoredChunk& chunk) {
  const uint64_t file_bytes = kChunkFileHeaderBytes + chunk.bytes.size();
  {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      lru_.splice(lru_.end(), lru_, it->second.lru_at);
      return true;
    }
    if (file_bytes > stats_.bytes_limit) return false;
    while (stats_.bytes_used + file_bytes > stats_.bytes_limit && !lru_.empty()) {
      drop_locked(lru_.front());
      ++stats_.evictions;
    }
    stats_.bytes_used += file_bytes;  // reserved while the file is written
  }
  try {
    write_chunk_file(path_of(key), key, layout_, chunk.num_tokens, chunk.bytes);
  } catch (const Error& e) {
    log_warning("local_disk: {}", e.what());
    std::lock_guard lock(mutex_);
    stats_.bytes_used -= file_bytes;
    return false;
  }
  std::lock_guard lock(mutex_);
  lru_.push_back(key);
  entries_.emplace(key, Entry{file_bytes, std::prev(lru_.end())});
  stats_.stored_tokens += chunk.num_tokens;
  return true;
}

void DiskChunkTier::record_hit_tokens(uint64_t tokens) {
  std::lock_guard lock(mutex_);
  stats_.hit_tokens += tokens;
}

ChunkTierStats DiskChunkTier::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace tandem
