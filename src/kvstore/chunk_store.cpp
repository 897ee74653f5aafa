// ChunkStore: tier lookups in order, and the disk writer thread.
#include "kvstore/chunk_store.h"

namespace tandem {

ChunkStore::ChunkStore(const ChunkStoreConfig& config, const std::array<uint8_t, 16>& layout)
    : config_(config) {
  if (config.cpu_bytes > 0) cpu_ = std::make_unique<CpuChunkTier>(config.cpu_bytes);
  if (config.disk_dir) {
    disk_ = std::make_unique<DiskChunkTier>(*config.disk_dir, config.disk_bytes, layout);
    writer_ = std::thread([this] { write_loop(); });
  }
}

ChunkStore::~ChunkStore() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

std::optional<ChunkStore::Found> ChunkStore::get(const BlockHash& key) {
  if (cpu_) {
    if (ChunkPtr chunk = cpu_->get(key)) return Found{std::move(chunk), ChunkTier::kCpu};
  }
  if (disk_) {
    if (ChunkPtr chunk = disk_->get(key)) {
      if (cpu_) (void)cpu_->put(key, chunk);
      return Found{std::move(chunk), ChunkTier::kDisk};
    }
  }
  return std::nullopt;
}

bool ChunkStore::contains(const BlockHash& key) const {
  return (cpu_ && cpu_->contains(key)) || (disk_ && disk_->contains(key));
}

void ChunkStore::put(const BlockHash& key, ChunkPtr chunk) {
  if (cpu_) (void)cpu_->put(key, chunk);
  if (!disk_ || disk_->contains(key)) return;
  {
    std::lock_guard lock(mutex_);
    if (queued_.contains(key)) return;
    const uint64_t size = chunk->bytes.size();
    if (queued_bytes_ > 0 && queued_bytes_ + size > config_.max_pending_write_bytes) {
      ++dropped_writes_;
      return;
    }
    queued_bytes_ += size;
    queued_.insert(key);
    queue_.emplace_back(key, std::move(chunk));
  }
  cv_.notify_all();
}

void ChunkStore::write_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and every queued chunk is written
    auto [key, chunk] = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.unlock();
    (void)disk_->put(key, *chunk);
    lock.lock();
    writing_ = false;
    queued_.erase(key);
    queued_bytes_ -= chunk->bytes.size();
    cv_.notify_all();
  }
}

void ChunkStore::flush() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return queue_.empty() && !writing_; });
}

void ChunkStore::record_hit_tokens(ChunkTier tier, uint64_t tokens) {
  if (tier == ChunkTier::kCpu && cpu_) cpu_->record_hit_tokens(tokens);
  if (tier == ChunkTier::kDisk && disk_) disk_->record_hit_tokens(tokens);
}

KvTierStats ChunkStore::stats() const {
  KvTierStats s;
  s.cpu_enabled = cpu_ != nullptr;
  s.disk_enabled = disk_ != nullptr;
  if (cpu_) s.cpu = cpu_->stats();
  if (disk_) {
    s.disk = disk_->stats();
    std::lock_guard lock(mutex_);
    s.disk.dropped_writes = dropped_writes_;
  }
  return s;
}

}  // namespace tandem
