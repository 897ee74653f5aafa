// TransferBuffer: the receiver's bookkeeping of its pd_buffer_size region, into which senders put
// KV chunks. Space is handed out in whole pages, per request: a request's chunks go back to back
// in one free run when one is large enough (so a sender can write them with one put), else each
// chunk gets its own run. Pages come back when the request's KV is loaded, when it is aborted,
// or when its deadline passes. Offsets only: the memory itself belongs to the transport.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tandem {

struct TransferBufferStats {
  uint64_t capacity_bytes = 0;
  uint64_t page_size = 0;
  uint64_t used_bytes = 0;  // whole pages held by live requests
  uint64_t peak_used_bytes = 0;
  uint64_t largest_free_run = 0;  // bytes: the largest single allocation that would succeed now
  uint64_t live_requests = 0;
  uint64_t live_ranges = 0;
  uint64_t allocations = 0;         // successful allocate() calls
  uint64_t failed_allocations = 0;  // allocate() calls refused for lack of room
  uint64_t released_requests = 0;   // by release()
  uint64_t expired_requests = 0;    // by release_expired()
};

class TransferBuffer {
 public:
  using Clock = std::chrono::steady_clock;

  struct Range {
    uint64_t offset = 0;  // page-aligned
    uint64_t bytes = 0;   // a whole number of pages
  };

  // `capacity_bytes` is rounded down to whole pages; throws tandem::Error unless page_size is a
  // power of two and the capacity holds at least one page.
  TransferBuffer(uint64_t capacity_bytes, uint64_t page_size);

  // Reserves room for chunks of `sizes` bytes for `request_id` (added to what it already holds)
  // and returns each chunk's offset. All or nothing: nullopt, with nothing reserved, when the
  // buffer has no room. The request's deadline becomes the later of its old one and `deadline`.
  // Throws tandem::Error for an empty request id, no sizes, or a zero size.
  [[nodiscard]] std::optional<std::vector<uint64_t>> allocate(std::string_view request_id,
                                                              std::span<const uint64_t> sizes,
                                                              Clock::time_point deadline);

  // Frees every page of the request (its KV was loaded, or it was aborted); false if it held none.
  bool release(std::string_view request_id);

  // Frees the requests whose deadline is at or before `now`; returns their ids.
  std::vector<std::string> release_expired(Clock::time_point now);

  // Moves a live request's deadline; false if the request holds nothing.
  bool set_deadline(std::string_view request_id, Clock::time_point deadline);

  // The ranges a request holds (empty if none), in allocation order.
  std::vector<Range> ranges(std::string_view request_id) const;

  TransferBufferStats stats() const;

 private:
  struct Holding {
    std::vector<Range> ranges;
    Clock::time_point deadline;
  };

  uint64_t round_up(uint64_t bytes) const;
  std::optional<uint64_t> take_run(uint64_t bytes);  // first fit; page-rounded bytes
  void give_back(Range range);                       // coalesces with its neighbours
  std::optional<std::vector<Range>> take_contiguous(std::span<const uint64_t> sizes,
                                                    std::vector<uint64_t>& offsets);
  std::optional<std::vector<Range>> take_per_chunk(std::span<const uint64_t> sizes,
                                                   std::vector<uint64_t>& offsets);
  void free_holding(const Holding& holding);

  uint64_t capacity_ = 0;
  uint64_t page_size_ = 0;
  std::map<uint64_t, uint64_t> free_runs_;             // offset -> bytes; disjoint, never adjacent
  std::unordered_map<std::string, Holding> holdings_;  // by request id
  TransferBufferStats stats_;  // counters and used bytes; stats() fills in the rest
  mutable std::mutex mutex_;
};

}  // namespace tandem
