// SenderChannel: the prefiller's side of the transfer channel, on its own threads (one per
// decoder) so the engine never waits for the network. For each TransferJob it asks the decoder's
// alloc port for room (retrying while the buffer is full, up to the transfer timeout), writes the
// chunks with a few large puts over the init connection (from GPU memory straight into the
// decoder's GPU buffer when the connection is CUDA IPC; otherwise from host memory, a GPU payload
// being downloaded first), flushes, and sends TransferDone to the
// decoder and to the proxy — or Abort to both on any failure. Connections are opened by the first
// job for a decoder (the configured pd_peer_* decoder's at startup), one pair per decoder, kept for
// later jobs and reopened once broken. Heartbeats go both ways on the
// alloc connection (every pd_heartbeat_interval_sec while idle); a decoder silent past
// pd_heartbeat_timeout_sec is taken for hung or dead, failing its transfer at once.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kv/kv_cache_io.h"
#include "transfer/kv_connector_config.h"
#include "transfer/transport.h"

namespace tandem {

// One request's prompt KV, gathered and ready to go.
struct TransferJob {
  std::string request_id;                   // the proxy's transfer id (disagg_spec.req_id)
  std::optional<ReceiverAddress> receiver;  // unset: no decoder known (the job fails)
  LayoutFingerprint fingerprint{};
  std::vector<ChunkDesc> chunks;       // (num_chunks) in prompt order
  std::unique_ptr<KvPayload> payload;  // the chunks back to back, each chunks[i].num_bytes long
                                       // (null when there are no chunks)
  std::string failure;                 // set: nothing to send, report this failure (Abort)
};

struct SenderChannelStats {
  uint64_t transfers_sent = 0;
  uint64_t transfer_failures = 0;
  uint64_t bytes_sent = 0;
  double transfer_seconds = 0;  // sum over sent transfers: job start (AllocRequest) to TransferDone
  double write_seconds = 0;     // sum over sent transfers: first put to flush done
  uint64_t connections = 0;     // links opened to decoders (a reconnect counts again)
};

class SenderChannel {
 public:
  SenderChannel(const KvConnectorConfig& config, std::shared_ptr<Transport> transport);
  ~SenderChannel();  // finishes the job in flight; queued jobs are aborted (Abort to the proxy)
  SenderChannel(const SenderChannel&) = delete;
  SenderChannel& operator=(const SenderChannel&) = delete;

  enum class StagingWait { kRoom, kTooLarge, kTimedOut, kCancelled, kStopping };
  // Thread-safe: waits until `bytes` more fit in pd_buffer_size (the sender's staging budget)
  // beside the queued and in-flight jobs (a job's payload stays staged until its transfer ends).
  // kTooLarge at once when `bytes` alone exceed it; otherwise kRoom, or kTimedOut at `deadline`,
  // kCancelled once `request_id` is cancelled, kStopping once the channel stops.
  StagingWait wait_for_staging(const std::string& request_id, uint64_t bytes,
                               std::chrono::steady_clock::time_point deadline);
  // Thread-safe; returns at once. A job with a payload must have had kRoom from
  // wait_for_staging for its bytes (only the caller's jobs add to the staged total).
  void submit(TransferJob job);
  // Thread-safe: drops the request's job if still queued, stops its retries for room if in
  // flight (the decoder is told Abort), and drops a job for it submitted within the transfer
  // timeout (the proxy abandoned it).
  void cancel(const std::string& request_id);
  SenderChannelStats stats() const;

 private:
  struct DecoderLinks {
    std::unique_ptr<Connection> init;   // carries the puts
    std::unique_ptr<Connection> alloc;  // AllocRequest / TransferDone / Abort
  };
  // One decoder's queue, connections and worker thread, so a slow or dead decoder delays only
  // the transfers to it.
  struct Lane {
    std::deque<TransferJob> queue;                     // guarded by mutex_
    DecoderLinks links;                                // the lane's thread only
    std::chrono::steady_clock::time_point last_heard;  // the decoder's last message (lane thread)
    uint64_t beats = 0;                                // Heartbeats sent (lane thread)
    // The configured decoder (pd_peer_*), connected before any job asks (lane thread).
    std::optional<ReceiverAddress> connect_early;
    int early_attempts = 0;
    std::jthread thread;
  };

  void run(Lane& lane);
  void process(Lane& lane, TransferJob& job);
  void keep_alive(Lane& lane);
  bool has_queued(const Lane& lane) const;  // or stopping
  void connect_early(Lane& lane);
  // Throws on failure; returns the bytes written and adds the put-to-flush time to `write_time`.
  uint64_t transfer(Lane& lane, TransferJob& job, std::chrono::nanoseconds& write_time);
  AllocResponse allocate(DecoderLinks& links, const TransferJob& job,
                         std::chrono::steady_clock::time_point deadline);
  void write_chunks(DecoderLinks& links, TransferJob& job, const AllocResponse& response,
                    std::chrono::steady_clock::time_point deadline, uint64_t& written);
  // The lane's connections, (re)opened when missing or broken.
  DecoderLinks& links_to(Lane& lane, const ReceiverAddress& receiver,
                         std::chrono::steady_clock::time_point deadline);
  void abort_on_decoder(Lane& lane, const TransferJob& job, const std::string& reason);
  void notify_proxy(const WireMessage& message);
  bool stopping() const;
  bool cancelled(const std::string& request_id) const;

  KvConnectorConfig config_;
  std::shared_ptr<Transport> transport_;

  mutable std::mutex mutex_;  // guards lanes_ (and their queues), queued_bytes_, stopping_
  std::condition_variable cv_;
  std::condition_variable staging_freed_;  // queued_bytes_ fell, a cancel came, or stopping_
  std::map<std::string, std::unique_ptr<Lane>> lanes_;  // by "host:init:alloc" ("" no decoder)
  uint64_t queued_bytes_ = 0;                           // bytes of queued and in-flight jobs
  bool stopping_ = false;
  // Cancelled request ids, and until when a job submitted for one is dropped.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> cancelled_;

  std::mutex proxy_mutex_;  // guards proxy_
  std::unique_ptr<Connection> proxy_;
  std::atomic<uint64_t> sent_{0}, failures_{0}, bytes_{0}, connections_{0};
  std::atomic<uint64_t> transfer_ns_{0}, write_ns_{0};
};

}  // namespace tandem
