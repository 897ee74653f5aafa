// TransferBuffer: a first-fit free list of page runs (coalesced on free) and per-request holdings.
#include "transfer/transfer_buffer.h"

#include <algorithm>

#include "core/error.h"

namespace tandem {
namespace {

// Chunk starts inside a contiguous run are aligned to this many bytes.
constexpr uint64_t kChunkAlignment = 256;

uint64_t align_up(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

}  // namespace

TransferBuffer::TransferBuffer(uint64_t capacity_bytes, uint64_t page_size) {
  TANDEM_CHECK(page_size > 0 && (page_size & (page_size - 1)) == 0,
               "transfer buffer: page size must be a power of two, got {}", page_size);
  capacity_ = capacity_bytes / page_size * page_size;
  TANDEM_CHECK(capacity_ > 0, "transfer buffer: {} bytes do not hold one {}-byte page",
               capacity_bytes, page_size);
  page_size_ = page_size;
  free_runs_[0] = capacity_;
  stats_.capacity_bytes = capacity_;
  stats_.page_size = page_size_;
  stats_.largest_free_run = capacity_;
}

uint64_t TransferBuffer::round_up(uint64_t bytes) const { return align_up(bytes, page_size_); }

std::optional<uint64_t> TransferBuffer::take_run(uint64_t bytes) {
  for (auto it = free_runs_.begin(); it != free_runs_.end(); ++it) {
    if (it->second < bytes) continue;
    uint64_t offset = it->first;
    uint64_t rest = it->second - bytes;
    free_runs_.erase(it);
    if (rest > 0) free_runs_[offset + bytes] = rest;
    return offset;
  }
  return std::nullopt;
}

void TransferBuffer::give_back(Range range) {
  auto next = free_runs_.lower_bound(range.offset);
  if (next != free_runs_.end() && range.offset + range.bytes == next->first) {
    range.bytes += next->second;
    next = free_runs_.erase(next);
  }
  if (next != free_runs_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == range.offset) {
      prev->second += range.bytes;
      return;
    }
  }
  free_runs_[range.offset] = range.bytes;
}

std::optional<std::vector<TransferBuffer::Range>> TransferBuffer::take_contiguous(
    std::span<const uint64_t> sizes, std::vector<uint64_t>& offsets) {
  uint64_t packed = 0;  // chunk starts aligned to kChunkAlignment inside the run
  for (uint64_t size : sizes) {
    packed = align_up(packed, kChunkAlignment) + size;  // sizes are <= capacity_: no overflow
    if (packed > capacity_) return std::nullopt;
  }
  uint64_t bytes = round_up(packed);
  std::optional<uint64_t> base = take_run(bytes);
  if (!base) return std::nullopt;
  uint64_t cursor = 0;
  for (uint64_t size : sizes) {
    cursor = align_up(cursor, kChunkAlignment);
    offsets.push_back(*base + cursor);
    cursor += size;
  }
  return std::vector<Range>{{*base, bytes}};
}

std::optional<std::vector<TransferBuffer::Range>> TransferBuffer::take_per_chunk(
    std::span<const uint64_t> sizes, std::vector<uint64_t>& offsets) {
  std::vector<Range> taken;
  for (uint64_t size : sizes) {
    uint64_t bytes = round_up(size);
    std::optional<uint64_t> offset = take_run(bytes);
    if (!offset) {
      for (const Range& r : taken) give_back(r);
      offsets.clear();
      return std::nullopt;
    }
    taken.push_back({*offset, bytes});
    offsets.push_back(*offset);
  }
  return taken;
}

std::optional<std::vector<uint64_t>> TransferBuffer::allocate(std::string_view request_id,
                                                              std::span<const uint64_t> sizes,
                                                              Clock::time_point deadline) {
  TANDEM_CHECK(!request_id.empty(), "transfer buffer: a request id is required");
  TANDEM_CHECK(!sizes.empty(), "transfer buffer: request '{}' asks for no chunks", request_id);
  TANDEM_CHECK(std::ranges::find(sizes, uint64_t(0)) == sizes.end(),
               "transfer buffer: request '{}' asks for a chunk of 0 bytes", request_id);
  std::lock_guard lock(mutex_);
  std::vector<uint64_t> offsets;
  std::optional<std::vector<Range>> ranges;
  if (std::ranges::all_of(sizes, [&](uint64_t size) { return size <= capacity_; })) {
    ranges = take_contiguous(sizes, offsets);
    if (!ranges) ranges = take_per_chunk(sizes, offsets);
  }
  if (!ranges) {
    ++stats_.failed_allocations;
    return std::nullopt;
  }
  auto [it, inserted] = holdings_.try_emplace(std::string(request_id), Holding{{}, deadline});
  Holding& holding = it->second;
  holding.deadline = std::max(holding.deadline, deadline);
  for (const Range& r : *ranges) {
    holding.ranges.push_back(r);
    stats_.used_bytes += r.bytes;
  }
  ++stats_.allocations;
  stats_.peak_used_bytes = std::max(stats_.peak_used_bytes, stats_.used_bytes);
  return offsets;
}

void TransferBuffer::free_holding(const Holding& holding) {
  for (const Range& r : holding.ranges) {
    give_back(r);
    stats_.used_bytes -= r.bytes;
  }
}

bool TransferBuffer::release(std::string_view request_id) {
  std::lock_guard lock(mutex_);
  auto it = holdings_.find(std::string(request_id));
  if (it == holdings_.end()) return false;
  free_holding(it->second);
  holdings_.erase(it);
  ++stats_.released_requests;
  return true;
}

std::vector<std::string> TransferBuffer::release_expired(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> expired;
  for (auto it = holdings_.begin(); it != holdings_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    free_holding(it->second);
    expired.push_back(it->first);
    it = holdings_.erase(it);
    ++stats_.expired_requests;
  }
  std::sort(expired.begin(), expired.end());
  return expired;
}

bool TransferBuffer::set_deadline(std::string_view request_id, Clock::time_point deadline) {
  std::lock_guard lock(mutex_);
  auto it = holdings_.find(std::string(request_id));
  if (it == holdings_.end()) return false;
  it->second.deadline = deadline;
  return true;
}

std::vector<TransferBuffer::Range> TransferBuffer::ranges(std::string_view request_id) const {
  std::lock_guard lock(mutex_);
  auto it = holdings_.find(std::string(request_id));
  return it == holdings_.end() ? std::vector<Range>{} : it->second.ranges;
}

TransferBufferStats TransferBuffer::stats() const {
  std::lock_guard lock(mutex_);
  TransferBufferStats s = stats_;
  s.live_requests = holdings_.size();
  s.live_ranges = 0;
  for (const auto& [id, holding] : holdings_) s.live_ranges += holding.ranges.size();
  s.largest_free_run = 0;
  for (const auto& [offset, bytes] : free_runs_)
    s.largest_free_run = std::max(s.largest_free_run, bytes);
  return s;
}

}  // namespace tandem
