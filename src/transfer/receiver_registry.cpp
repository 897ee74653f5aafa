// ReceiverRegistry: allocation answers, completion, freeing and lookup over TransferBuffer.
#include "transfer/receiver_registry.h"

#include <algorithm>

#include "core/error.h"

namespace tandem {
namespace {

AllocResponse refusal(const AllocRequest& request, AllocStatus status, std::string message) {
  return AllocResponse{request.request_id, status, {}, std::move(message)};
}

}  // namespace

ReceiverRegistry::ReceiverRegistry(uint64_t capacity_bytes, uint64_t page_size,
                                   LayoutFingerprint fingerprint, std::chrono::milliseconds timeout)
    : buffer_(capacity_bytes, page_size), fingerprint_(fingerprint), timeout_(timeout) {}

AllocResponse ReceiverRegistry::allocate(const AllocRequest& request, Clock::time_point now) {
  if (request.layout_fingerprint != fingerprint_) {
    return refusal(request, AllocStatus::kError,
                   "KV layout fingerprint mismatch: the sender's model or KV layout differs from "
                   "this receiver's");
  }
  std::lock_guard lock(mutex_);
  auto abandoned = abandoned_.find(request.request_id);
  if (abandoned != abandoned_.end() && now < abandoned->second) {
    return refusal(request, AllocStatus::kError,
                   fmt::format("request {} was aborted (the proxy abandoned it)",
                               request.request_id));
  }
  AllocResponse response{request.request_id, AllocStatus::kOk, {}, ""};
  std::vector<uint64_t> sizes;  // (chunks to write) bytes
  uint64_t total = 0;
  for (const ChunkDesc& chunk : request.chunks) {
    auto it = ready_.find(chunk.hash);
    bool present = it != ready_.end() && it->second.location.num_tokens == chunk.num_tokens &&
                   it->second.location.num_bytes == chunk.num_bytes;
    response.slots.push_back(
        {present ? ChunkPlacement::kAlreadyPresent : ChunkPlacement::kWrite, 0});
    if (!present) {
      sizes.push_back(chunk.num_bytes);
      total += chunk.num_bytes;
    }
  }
  if (sizes.empty()) return response;
  uint64_t capacity = buffer_.stats().capacity_bytes;
  if (total > capacity) {
    return refusal(request, AllocStatus::kError,
                   fmt::format("the request's {} bytes of KV exceed the whole transfer buffer "
                               "({} bytes, pd_buffer_size)",
                               total, capacity));
  }
  auto offsets = buffer_.allocate(request.request_id, sizes, now + timeout_);
  if (!offsets) {
    return refusal(request, AllocStatus::kFull,
                   fmt::format("transfer buffer full: {} bytes asked, {} of {} in use", total,
                               buffer_.stats().used_bytes, capacity));
  }
  Holding& holding = held_[request.request_id];
  holding.state = TransferState::kWriting;  // (again, for a request that adds chunks)
  size_t next = 0;
  for (size_t i = 0; i < request.chunks.size(); ++i) {
    if (response.slots[i].placement != ChunkPlacement::kWrite) continue;
    const ChunkDesc& chunk = request.chunks[i];
    uint64_t offset = (*offsets)[next++];
    response.slots[i].offset = offset;
    holding.chunks.push_back({chunk.hash, {offset, chunk.num_tokens, chunk.num_bytes}});
  }
  return response;
}

bool ReceiverRegistry::complete(const TransferDone& done) {
  std::lock_guard lock(mutex_);
  ++transfers_received_;
  auto it = held_.find(done.request_id);
  if (it == held_.end()) return false;
  if (it->second.abandoned) {  // written for a client that left: nobody will load it
    forget_chunks(done.request_id);
    buffer_.release(done.request_id);
    return false;
  }
  it->second.state = TransferState::kDone;
  for (const HeldChunk& chunk : it->second.chunks) {
    // Only chunks the sender says it wrote; a chunk it skipped stays unloadable.
    if (std::find(done.chunks.begin(), done.chunks.end(), chunk.hash) == done.chunks.end()) {
      continue;
    }
    ready_.try_emplace(chunk.hash, ReadyChunk{done.request_id, chunk.location});
  }
  return true;
}

void ReceiverRegistry::forget_chunks(const std::string& request_id) {
  auto it = held_.find(request_id);
  if (it == held_.end()) return;
  for (const HeldChunk& chunk : it->second.chunks) {
    auto r = ready_.find(chunk.hash);
    if (r != ready_.end() && r->second.request_id == request_id) ready_.erase(r);
  }
  held_.erase(it);
}

bool ReceiverRegistry::is_writing(std::string_view request_id) const {
  std::lock_guard lock(mutex_);
  auto it = held_.find(std::string(request_id));
  return it != held_.end() && it->second.state == TransferState::kWriting;
}

bool ReceiverRegistry::release_if_writing(std::string_view request_id) {
  std::lock_guard lock(mutex_);
  std::string id(request_id);
  auto it = held_.find(id);
  if (it == held_.end() || it->second.state != TransferState::kWriting) return false;
  forget_chunks(id);
  return buffer_.release(id);
}

bool ReceiverRegistry::release(std::string_view request_id) {
  std::lock_guard lock(mutex_);
  std::string id(request_id);
  forget_chunks(id);
  return buffer_.release(id);
}

bool ReceiverRegistry::abandon(std::string_view request_id, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::string id(request_id);
  drop_expired_tombstones(now);
  abandoned_[id] = now + timeout_;
  auto it = held_.find(id);
  if (it == held_.end()) return false;
  if (it->second.state == TransferState::kWriting) {
    // Its sender may still be putting bytes into these pages: they must not be reused yet.
    it->second.abandoned = true;
    return true;
  }
  forget_chunks(id);
  return buffer_.release(id);
}

void ReceiverRegistry::drop_expired_tombstones(Clock::time_point now) {
  std::erase_if(abandoned_, [&](const auto& entry) { return entry.second <= now; });
}

std::vector<std::string> ReceiverRegistry::reap(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  drop_expired_tombstones(now);
  std::vector<std::string> expired = buffer_.release_expired(now);
  for (const std::string& id : expired) forget_chunks(id);
  return expired;
}

int ReceiverRegistry::visit_ready_prefix(
    std::span<const BlockHash> hashes,
    const std::function<bool(size_t, const ChunkLocation&)>& visit) const {
  std::lock_guard lock(mutex_);
  int visited = 0;
  for (size_t i = 0; i < hashes.size(); ++i) {
    auto it = ready_.find(hashes[i]);
    if (it == ready_.end() || !visit(i, it->second.location)) break;
    ++visited;
  }
  return visited;
}

ReceiverRegistryStats ReceiverRegistry::stats() const {
  std::lock_guard lock(mutex_);
  return {buffer_.stats(), transfers_received_, ready_.size(), abandoned_.size()};
}

}  // namespace tandem
