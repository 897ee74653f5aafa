// ReceiverRegistry: the decoder's bookkeeping of transferred KV chunks — which request holds
// which pages of the transfer buffer (TransferBuffer), which chunk (by hash) lives where, and
// whether its bytes have arrived (TransferDone). It answers AllocRequests (room, "already
// present", full, or an error) and finds the longest run of a prompt's chunks that can be
// loaded. Pages come back on load, Abort, abandonment (by the proxy) or timeout. Offsets only;
// thread-safe.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "transfer/transfer_buffer.h"
#include "transfer/wire_protocol.h"

namespace tandem {

// Where one received chunk's bytes are: buffer[offset, offset + num_bytes).
struct ChunkLocation {
  uint64_t offset = 0;
  uint32_t num_tokens = 0;
  uint64_t num_bytes = 0;
};

struct ReceiverRegistryStats {
  TransferBufferStats buffer;
  uint64_t transfers_received = 0;  // TransferDone messages accepted
  uint64_t ready_chunks = 0;        // chunks loadable now
  uint64_t abandoned_ids = 0;       // aborted ids still refused (until the transfer timeout)
};

class ReceiverRegistry {
 public:
  using Clock = std::chrono::steady_clock;

  // `fingerprint`: the layout this receiver accepts; `timeout`: how long pages wait to be loaded.
  ReceiverRegistry(uint64_t capacity_bytes, uint64_t page_size, LayoutFingerprint fingerprint,
                   std::chrono::milliseconds timeout);

  // Room for the request's chunks: kOk with one slot per chunk (kAlreadyPresent for a chunk
  // whose bytes this receiver already holds), kFull when the buffer lacks room now, kError when
  // the layout differs or the request could never fit.
  AllocResponse allocate(const AllocRequest& request, Clock::time_point now);
  // Every put of the request has completed: its chunks become loadable. False (and nothing
  // changes) when the request holds no pages here (all chunks were already present, or it was
  // freed meanwhile).
  bool complete(const TransferDone& done);
  // Whether the request holds pages here whose TransferDone has not arrived yet (the sender is
  // still writing, or its TransferDone is on the way).
  [[nodiscard]] bool is_writing(std::string_view request_id) const;
  // Frees the request's pages if its TransferDone never came (its sender went away).
  bool release_if_writing(std::string_view request_id);
  // Frees the request's pages (loaded, aborted or finished); false if it held none.
  bool release(std::string_view request_id);
  // The proxy abandoned the request (its client left, or its transfer failed there): its pages
  // go now, or — while its sender still writes them — as soon as its TransferDone arrives; an
  // AllocRequest for it within the timeout is refused. Returns whether it held pages.
  bool abandon(std::string_view request_id, Clock::time_point now);
  // Frees the requests whose pages waited past the timeout; returns their ids.
  std::vector<std::string> reap(Clock::time_point now);

  // Walks `hashes` from the first while each chunk is loadable and `visit(index, location)`
  // returns true, holding the registry's lock (so nothing is freed meanwhile); returns how many
  // chunks were visited with true.
  int visit_ready_prefix(std::span<const BlockHash> hashes,
                         const std::function<bool(size_t, const ChunkLocation&)>& visit) const;

  ReceiverRegistryStats stats() const;

 private:
  struct HeldChunk {  // written (or being written) into the request's pages
    BlockHash hash;
    ChunkLocation location;
  };
  enum class TransferState { kWriting, kDone };  // before / after the request's TransferDone
  struct Holding {
    std::vector<HeldChunk> chunks;
    TransferState state = TransferState::kWriting;
    bool abandoned = false;  // free on TransferDone instead of making the chunks loadable
  };
  struct ReadyChunk {
    std::string request_id;  // whose pages hold it
    ChunkLocation location;
  };

  void forget_chunks(const std::string& request_id);  // mutex_ held
  // Drops the abort tombstones whose refusal period ended by `now` (mutex_ held): on each new
  // abort, and on the periodic reap so that a burst of aborts and then none leaves nothing.
  void drop_expired_tombstones(Clock::time_point now);

  TransferBuffer buffer_;
  LayoutFingerprint fingerprint_;
  std::chrono::milliseconds timeout_;
  std::unordered_map<std::string, Holding> held_;                     // by request id
  std::unordered_map<BlockHash, ReadyChunk, BlockHashHasher> ready_;  // arrived, by hash
  // Abandoned request ids and until when an AllocRequest for one is refused.
  std::unordered_map<std::string, Clock::time_point> abandoned_;
  uint64_t transfers_received_ = 0;
  mutable std::mutex mutex_;
};

}  // namespace tandem
