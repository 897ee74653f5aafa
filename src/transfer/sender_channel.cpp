// SenderChannel: the worker loop, allocation with retries, coalesced puts and notifications.
#include "transfer/sender_channel.h"

#include <algorithm>

#include "core/error.h"
#include "core/logging.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kConnectTimeout = 5s;
constexpr auto kEarlyConnectTimeout = 500ms;  // a startup attempt; retried each heartbeat interval
constexpr auto kFullRetryFirst = 20ms;
constexpr auto kFullRetryMax = 500ms;
constexpr auto kProxyTimeout = 5s;

std::chrono::milliseconds remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, 1ms);
}

uint64_t payload_bytes(const TransferJob& job) { return job.payload ? job.payload->size() : 0; }

double milliseconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The lane of a decoder: loopback spelled any way is one host, so the LMCache config's
// "localhost" and a proxy's "127.0.0.1" share the connections.
std::string decoder_key(const ReceiverAddress& r) {
  const bool loopback = r.host == "localhost" || r.host == "127.0.0.1" || r.host == "::1" ||
                        r.host == "[::1]" || r.host == "ip6-localhost";
  return fmt::format("{}:{}:{}", loopback ? "loopback" : r.host, r.init_port, r.alloc_port);
}

// The next message on `connection` that is not a Heartbeat; throws TransportError at the
// deadline, or once the peer has sent nothing at all (not even a Heartbeat) for `silence` — a
// live receiver sends one every pd_heartbeat_interval_sec, so silence means hung or dead.
WireMessage next_message(Connection& connection, Clock::time_point deadline, const char* what,
                         std::chrono::milliseconds silence = std::chrono::hours(24)) {
  Clock::time_point last_heard = Clock::now();
  for (;;) {
    Clock::time_point now = Clock::now();
    if (now >= deadline) {
      throw TransportError(
          fmt::format("no {} from {} within the transfer timeout", what, connection.peer_name()));
    }
    if (now - last_heard >= silence) {
      throw TransportError(
          fmt::format("no {} from {}: it has sent nothing, not even a heartbeat, for {} ms "
                      "(pd_heartbeat_timeout_sec); taken for hung or dead",
                      what, connection.peer_name(), silence.count()));
    }
    auto wait = std::min(
        remaining(deadline),
        std::chrono::duration_cast<std::chrono::milliseconds>(silence - (now - last_heard)) + 1ms);
    std::optional<WireMessage> m = recv_message(connection, wait);
    if (!m) continue;
    last_heard = Clock::now();
    if (!std::holds_alternative<Heartbeat>(*m)) return std::move(*m);
  }
}

// Sends Hello and checks the HelloAck; returns it.
HelloAck greet(Connection& connection, const std::string& peer_id, Clock::time_point deadline) {
  send_message(connection, Hello{kWireVersion, PeerRole::kSender, peer_id});
  WireMessage reply = next_message(connection, deadline, "HelloAck");
  const auto* ack = std::get_if<HelloAck>(&reply);
  TANDEM_CHECK(ack != nullptr, "{} answered Hello with {}", connection.peer_name(),
               message_type_name(message_type(reply)));
  TANDEM_CHECK(ack->status == HelloStatus::kOk, "{} refused the connection: {}",
               connection.peer_name(), ack->message);
  return *ack;
}

}  // namespace

SenderChannel::SenderChannel(const KvConnectorConfig& config, std::shared_ptr<Transport> transport)
    : config_(config), transport_(std::move(transport)) {
  TANDEM_CHECK(transport_ != nullptr, "kv sender: no transport");
  // The decoder the LMCache config names gets its connections before the first request needs
  // them: opening them (connect, Hello, the CUDA IPC mapping) took ~60 ms of that request's TTFT.
  if (config_.peer && !config_.peer->host.empty() && config_.peer->init_port > 0 &&
      config_.peer->alloc_port > 0) {
    std::lock_guard lock(mutex_);
    std::unique_ptr<Lane>& lane = lanes_[decoder_key(*config_.peer)];
    lane = std::make_unique<Lane>();
    lane->connect_early = config_.peer;
    lane->thread = std::jthread([this, raw = lane.get()] { run(*raw); });
  }
}

SenderChannel::~SenderChannel() {
  std::map<std::string, std::unique_ptr<Lane>> lanes;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    lanes.swap(lanes_);
  }
  cv_.notify_all();
  staging_freed_.notify_all();
  for (auto& [key, lane] : lanes) lane->thread = {};  // joins: each aborts what it still had
}

SenderChannel::StagingWait SenderChannel::wait_for_staging(const std::string& request_id,
                                                           uint64_t bytes,
                                                           Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  if (bytes > config_.buffer_bytes) return StagingWait::kTooLarge;
  StagingWait outcome = StagingWait::kTimedOut;
  staging_freed_.wait_until(lock, deadline, [&] {
    if (stopping_) {
      outcome = StagingWait::kStopping;
    } else if (cancelled_.contains(request_id)) {
      outcome = StagingWait::kCancelled;
    } else if (queued_bytes_ + bytes <= config_.buffer_bytes) {
      outcome = StagingWait::kRoom;
    } else {
      return false;
    }
    return true;
  });
  return outcome;
}

void SenderChannel::submit(TransferJob job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // the engine has stopped before its connector: nothing comes
    if (cancelled_.contains(job.request_id)) {
      log_info("kv sender: transfer {} dropped: the proxy abandoned it", job.request_id);
      return;
    }
    queued_bytes_ += payload_bytes(job);  // within pd_buffer_size: the caller waited for room
    std::string key = job.receiver ? decoder_key(*job.receiver) : "";
    std::unique_ptr<Lane>& lane = lanes_[key];
    if (!lane) {
      lane = std::make_unique<Lane>();
      lane->thread = std::jthread([this, raw = lane.get()] { run(*raw); });
    }
    lane->queue.push_back(std::move(job));
  }
  cv_.notify_all();
}

void SenderChannel::cancel(const std::string& request_id) {
  std::lock_guard lock(mutex_);
  Clock::time_point now = Clock::now();
  std::erase_if(cancelled_, [&](const auto& entry) { return entry.second <= now; });
  cancelled_[request_id] = now + config_.transfer_timeout;
  for (auto& [key, lane] : lanes_) {
    auto it = std::find_if(lane->queue.begin(), lane->queue.end(),
                           [&](const TransferJob& job) { return job.request_id == request_id; });
    if (it == lane->queue.end()) continue;
    queued_bytes_ -= payload_bytes(*it);
    ++failures_;
    lane->queue.erase(it);
    log_info("kv sender: transfer {} dropped from the queue: the proxy abandoned it", request_id);
  }
  staging_freed_.notify_all();
}

bool SenderChannel::cancelled(const std::string& request_id) const {
  std::lock_guard lock(mutex_);
  return cancelled_.contains(request_id);
}

bool SenderChannel::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

SenderChannelStats SenderChannel::stats() const {
  return {sent_,       failures_, bytes_, double(transfer_ns_) * 1e-9, double(write_ns_) * 1e-9,
          connections_};
}

void SenderChannel::run(Lane& lane) {
  for (;;) {
    if (lane.connect_early && !has_queued(lane)) connect_early(lane);
    TransferJob job;
    {
      std::unique_lock lock(mutex_);
      bool woken = cv_.wait_for(lock, config_.heartbeat_interval,
                                [&] { return stopping_ || !lane.queue.empty(); });
      if (stopping_) break;
      if (!woken) {
        lock.unlock();
        keep_alive(lane);
        continue;
      }
      job = std::move(lane.queue.front());
      lane.queue.pop_front();
    }
    process(lane, job);
    const uint64_t done_bytes = payload_bytes(job);
    job.payload.reset();  // frees its (GPU) memory before the budget says so
    {
      std::lock_guard lock(mutex_);
      queued_bytes_ -= done_bytes;
    }
    staging_freed_.notify_all();
  }
  std::deque<TransferJob> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(lane.queue);
  }
  for (const TransferJob& job : left) {
    ++failures_;
    notify_proxy(Abort{job.request_id, "the prefiller is shutting down"});
  }
}

bool SenderChannel::has_queued(const Lane& lane) const {
  std::lock_guard lock(mutex_);
  return stopping_ || !lane.queue.empty();
}

// Until it succeeds once: a decoder that is not listening yet (engines start in any order) is
// tried again after a heartbeat interval, quietly; a queued job connects on its own instead.
void SenderChannel::connect_early(Lane& lane) {
  try {
    links_to(lane, *lane.connect_early, Clock::now() + kEarlyConnectTimeout);
    lane.connect_early.reset();
  } catch (const std::exception& e) {
    if (lane.early_attempts++ == 0) {
      log_info("kv sender: decoder {}:{}:{} is not reachable yet ({}); connecting when it is",
               lane.connect_early->host, lane.connect_early->init_port,
               lane.connect_early->alloc_port, e.what());
    }
  }
}

// An idle lane's heartbeat: tells the decoder this sender is alive, reads the decoder's
// heartbeats, and drops links to a decoder silent past the heartbeat timeout (the next job
// reconnects, or fails at once if the decoder is gone).
void SenderChannel::keep_alive(Lane& lane) {
  DecoderLinks& links = lane.links;
  if (!links.alloc) return;
  try {
    TANDEM_CHECK(!links.alloc->is_broken() && !links.init->is_broken(), "the connection broke");
    send_message(*links.alloc, Heartbeat{++lane.beats});
    while (std::optional<WireMessage> m = recv_message(*links.alloc, 0ms)) {
      lane.last_heard = Clock::now();
    }
    TANDEM_CHECK(Clock::now() - lane.last_heard < config_.heartbeat_timeout,
                 "no heartbeat for {} ms (pd_heartbeat_timeout_sec): hung or dead",
                 config_.heartbeat_timeout.count());
  } catch (const std::exception& e) {
    log_warning("kv sender: dropping the links to decoder {}: {}", links.alloc->peer_name(),
                e.what());
    links = {};
  }
}

void SenderChannel::process(Lane& lane, TransferJob& job) {
  auto start = Clock::now();
  try {
    std::chrono::nanoseconds write_time{0};
    uint64_t written = transfer(lane, job, write_time);
    const auto total_time = Clock::now() - start;
    ++sent_;
    bytes_ += written;
    transfer_ns_ += uint64_t(std::chrono::nanoseconds(total_time).count());
    write_ns_ += uint64_t(write_time.count());
    log_info(
        "kv sender: {} done: {} chunks, {} bytes in {:.3f} ms ({:.3f} ms writing, {:.1f} GB/s)",
        job.request_id, job.chunks.size(), written, milliseconds(total_time),
        milliseconds(write_time),
        write_time.count() > 0 ? double(written) / double(write_time.count()) : 0.0);
    notify_proxy(TransferDone{job.request_id, {}});
  } catch (const std::exception& e) {
    ++failures_;
    std::string reason = e.what();
    log_warning("kv sender: transfer {} failed: {}", job.request_id, reason);
    if (reason.size() > kMaxTextBytes) reason.resize(kMaxTextBytes);
    abort_on_decoder(lane, job, reason);
    notify_proxy(Abort{job.request_id, reason});
  }
}

uint64_t SenderChannel::transfer(Lane& lane, TransferJob& job,
                                 std::chrono::nanoseconds& write_time) {
  TANDEM_CHECK(job.failure.empty(), "{}", job.failure);
  if (job.chunks.empty()) return 0;  // nothing to push (e.g. only a discarded partial chunk)
  TANDEM_CHECK(job.receiver.has_value(),
               "no decoder to send to: the request's disagg_spec names none and the LMCache "
               "config has no pd_peer_host/pd_peer_init_port/pd_peer_alloc_port");
  auto deadline = Clock::now() + config_.transfer_timeout;
  DecoderLinks& links = links_to(lane, *job.receiver, deadline);
  AllocResponse response = allocate(links, job, deadline);
  lane.last_heard = Clock::now();  // it answered: alive (its heartbeats were read meanwhile)
  uint64_t written = 0;
  const auto write_start = Clock::now();
  write_chunks(links, job, response, deadline, written);
  write_time = Clock::now() - write_start;
  TransferDone done{job.request_id, {}};
  for (const ChunkDesc& chunk : job.chunks) done.chunks.push_back(chunk.hash);
  send_message(*links.alloc, done);
  return written;
}

SenderChannel::DecoderLinks& SenderChannel::links_to(Lane& lane, const ReceiverAddress& receiver,
                                                     Clock::time_point deadline) {
  DecoderLinks& links = lane.links;
  if (links.init && links.alloc && !links.init->is_broken() && !links.alloc->is_broken()) {
    return links;
  }
  const std::string key =
      fmt::format("{}:{}:{}", receiver.host, receiver.init_port, receiver.alloc_port);
  if (links.init || links.alloc) {
    log_info("kv sender: reconnecting to decoder {} (the old connection broke)", key);
  }
  links = {};
  auto connect_by = std::min(deadline, Clock::now() + kConnectTimeout);
  DecoderLinks fresh;
  fresh.init =
      transport_->connect(receiver.host, uint16_t(receiver.init_port), remaining(connect_by));
  HelloAck ack = greet(*fresh.init, config_.peer_id, connect_by);
  TANDEM_CHECK(!ack.rkey.empty() && ack.buffer_size > 0,
               "decoder {} announced no transfer buffer on its init port", key);
  fresh.init->attach_remote_buffer({ack.buffer_address, ack.buffer_size, ack.rkey});
  fresh.alloc =
      transport_->connect(receiver.host, uint16_t(receiver.alloc_port), remaining(connect_by));
  greet(*fresh.alloc, config_.peer_id, connect_by);
  log_info("kv sender: connected to decoder {} ({} MiB buffer)", key, ack.buffer_size >> 20);
  ++connections_;
  lane.last_heard = Clock::now();
  return links = std::move(fresh);
}

AllocResponse SenderChannel::allocate(DecoderLinks& links, const TransferJob& job,
                                      Clock::time_point deadline) {
  AllocRequest request{job.request_id, job.fingerprint, job.chunks};
  auto pause = std::chrono::milliseconds(kFullRetryFirst);
  for (;;) {
    send_message(*links.alloc, request);
    WireMessage reply =
        next_message(*links.alloc, deadline, "AllocResponse", config_.heartbeat_timeout);
    const auto* response = std::get_if<AllocResponse>(&reply);
    TANDEM_CHECK(response != nullptr && response->request_id == job.request_id,
                 "decoder answered an AllocRequest for {} with an unexpected {}", job.request_id,
                 message_type_name(message_type(reply)));
    if (response->status == AllocStatus::kOk) {
      TANDEM_CHECK(response->slots.size() == job.chunks.size(),
                   "decoder gave {} slots for {} chunks", response->slots.size(),
                   job.chunks.size());
      return *response;
    }
    TANDEM_CHECK(response->status == AllocStatus::kFull, "decoder refused the transfer: {}",
                 response->message);
    TANDEM_CHECK(!stopping(), "the prefiller is shutting down");
    TANDEM_CHECK(!cancelled(job.request_id), "the request was aborted (the proxy abandoned it)");
    TANDEM_CHECK(Clock::now() + pause < deadline,
                 "the decoder's transfer buffer stayed full for pd_transfer_timeout_sec ({})",
                 response->message);
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::milliseconds>(pause * 2, kFullRetryMax);
  }
}

// Puts every chunk to write, merging neighbours that are contiguous on both sides into one put.
// A connection that takes GPU memory (CUDA IPC) writes the payload where it is; one that takes
// host memory only (UCX) gets a GPU payload's host copy (host staging).
void SenderChannel::write_chunks(DecoderLinks& links, TransferJob& job,
                                 const AllocResponse& response, Clock::time_point deadline,
                                 uint64_t& written) {
  TANDEM_CHECK(job.payload != nullptr, "transfer {}: chunks without a payload", job.request_id);
  const uint8_t* source = links.init->put_source_memory() == MemoryKind::kCuda
                              ? job.payload->ready_data()
                              : job.payload->host_bytes().data();
  // The pending put: source[run_local, + run_bytes) -> remote run_remote; none if 0 bytes.
  uint64_t run_local = 0, run_remote = 0, run_bytes = 0;
  auto put_run = [&] {
    if (run_bytes == 0) return;
    links.init->put(source + run_local, run_bytes, run_remote);
    written += run_bytes;
    run_bytes = 0;
  };
  uint64_t local = 0;  // offset of chunk i in the payload
  for (size_t i = 0; i < job.chunks.size(); ++i) {
    const uint64_t bytes = job.chunks[i].num_bytes;
    const ChunkSlot& slot = response.slots[i];
    if (slot.placement != ChunkPlacement::kWrite) {
      put_run();
    } else if (run_bytes > 0 && run_local + run_bytes == local &&
               run_remote + run_bytes == slot.offset) {
      run_bytes += bytes;
    } else {
      put_run();
      run_local = local;
      run_remote = slot.offset;
      run_bytes = bytes;
    }
    local += bytes;
  }
  put_run();
  links.init->flush(remaining(deadline));
}

void SenderChannel::abort_on_decoder(Lane& lane, const TransferJob& job,
                                     const std::string& reason) {
  DecoderLinks& links = lane.links;
  try {
    if (links.alloc && !links.alloc->is_broken()) {
      send_message(*links.alloc, Abort{job.request_id, reason});
    }
  } catch (const std::exception& e) {
    log_debug("kv sender: could not send Abort for {} to the decoder: {}", job.request_id,
              e.what());
  }
  // A connection left in an unknown state (a reply may still be on its way) is not reused.
  links = {};
}

void SenderChannel::notify_proxy(const WireMessage& message) {
  if (!config_.proxy_host) return;
  std::lock_guard lock(proxy_mutex_);
  for (int attempt = 0; attempt < 2; ++attempt) {  // a stale connection gets one reconnect
    try {
      if (!proxy_ || proxy_->is_broken()) {
        auto deadline = Clock::now() + kProxyTimeout;
        proxy_ = transport_->connect(*config_.proxy_host, uint16_t(config_.proxy_port),
                                     remaining(deadline));
        greet(*proxy_, config_.peer_id, deadline);
      }
      send_message(*proxy_, message);
      return;
    } catch (const std::exception& e) {
      proxy_.reset();
      if (attempt == 1) {
        log_warning("kv sender: cannot notify the proxy at {}:{}: {}", *config_.proxy_host,
                    config_.proxy_port, e.what());
      }
    }
  }
}

}  // namespace tandem
