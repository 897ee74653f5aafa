// SenderChannel: the prefiller's side of the transfer channel, on its own thread so the engine
// never waits for the network. For each TransferJob it asks the decoder's alloc port for room
// (retrying while the buffer is full, up to the transfer timeout), writes the chunks with a few
// large puts over the init connection, flushes, and sends TransferDone to the decoder and to the
// proxy — or Abort to both on any failure. Connections are opened lazily, one pair per decoder,
// kept for later jobs and reopened once broken.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transfer/kv_connector_config.h"
#include "transfer/transport.h"

namespace tandem {

// One request's prompt KV, gathered and ready to go.
struct TransferJob {
  std::string request_id;                   // the proxy's transfer id (disagg_spec.req_id)
  std::optional<ReceiverAddress> receiver;  // unset: no decoder known (the job fails)
  LayoutFingerprint fingerprint{};
  std::vector<ChunkDesc> chunks;  // (num_chunks) in prompt order
  std::vector<uint8_t> bytes;     // the chunks back to back, each chunks[i].num_bytes long
  std::string failure;            // set: nothing to send, report this failure (Abort)
};

struct SenderChannelStats {
  uint64_t transfers_sent = 0;
  uint64_t transfer_failures = 0;
  uint64_t bytes_sent = 0;
};

class SenderChannel {
 public:
  SenderChannel(const KvConnectorConfig& config, std::shared_ptr<Transport> transport);
  ~SenderChannel();  // finishes the job in flight; queued jobs are aborted (Abort to the proxy)
  SenderChannel(const SenderChannel&) = delete;
  SenderChannel& operator=(const SenderChannel&) = delete;

  // Thread-safe; returns at once. Jobs whose bytes would take the queued total past
  // pd_buffer_size (the sender's staging budget) fail at once (Abort to the proxy).
  void submit(TransferJob job);
  SenderChannelStats stats() const;

 private:
  struct DecoderLinks {
    std::unique_ptr<Connection> init;   // carries the puts
    std::unique_ptr<Connection> alloc;  // AllocRequest / TransferDone / Abort
  };

  void run();
  void process(TransferJob& job);
  // Throws on failure; returns the bytes written.
  uint64_t transfer(const TransferJob& job);
  AllocResponse allocate(DecoderLinks& links, const TransferJob& job,
                         std::chrono::steady_clock::time_point deadline);
  void write_chunks(DecoderLinks& links, const TransferJob& job, const AllocResponse& response,
                    std::chrono::steady_clock::time_point deadline, uint64_t& written);
  DecoderLinks& links_to(const ReceiverAddress& receiver,
                         std::chrono::steady_clock::time_point deadline);
  void abort_on_decoder(const TransferJob& job, const std::string& reason);
  void notify_proxy(const WireMessage& message);
  bool stopping() const;

  KvConnectorConfig config_;
  std::shared_ptr<Transport> transport_;
  std::map<std::string, DecoderLinks> decoders_;  // by "host:init:alloc"; worker thread only
  std::unique_ptr<Connection> proxy_;             // worker thread only

  mutable std::mutex mutex_;  // guards queue_, stopping_
  std::condition_variable cv_;
  std::deque<TransferJob> queue_;
  uint64_t queued_bytes_ = 0;  // bytes of the jobs in queue_ and in flight
  bool stopping_ = false;
  std::atomic<uint64_t> sent_{0}, failures_{0}, bytes_{0};
  std::jthread worker_;  // last: started once everything else exists
};

}  // namespace tandem
