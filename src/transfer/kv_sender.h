// KvSender: the prefiller's connector (pd_role sender). When a request that carries a
// disagg_spec has its prompt KV computed, it cuts the prompt into chunks (chunk_hashes), gathers
// their KV from the sequence's blocks through the KvCacheIo on the engine thread — before the
// engine can free them; on the GPU the gather is enqueued and lands in device memory — and hands
// the payload to its SenderChannel, which pushes it to the decoder asynchronously. The payloads
// queued and in flight share pd_buffer_size: when the next one does not fit (the decoder takes
// transfers more slowly than prompts are computed), the engine thread waits for room, up to
// pd_transfer_timeout_sec — backpressure instead of failed transfers.
#pragma once
#include <memory>
#include <string>

#include "engine/kv_connector.h"
#include "kv/kv_cache_io.h"
#include "transfer/kv_connector_config.h"
#include "transfer/kv_layout.h"
#include "transfer/kv_transfer_params.h"
#include "transfer/sender_channel.h"

namespace tandem {

class KvSender final : public KvConnector {
 public:
  // `kv` must outlive the sender; `model_fingerprint` roots the chunk keys.
  KvSender(const KvConnectorConfig& config, std::shared_ptr<Transport> transport, KvCacheIo& kv,
           std::string model_fingerprint);

  bool transfer_arriving(const Sequence&) override { return false; }
  int num_loadable_tokens(const Sequence&, int) override { return 0; }
  int load(const Sequence&, int, int) override { return 0; }
  void on_prompt_computed(const Sequence& seq) override;
  void on_finished(const Sequence&) override {}
  void abort_transfer(const std::string& transfer_id) override { channel_.cancel(transfer_id); }
  KvConnectorStats stats() const override;

 private:
  // The job without its payload: the receiver and the chunks.
  TransferJob plan(const Sequence& seq) const;
  // Gathers the chunks' KV from the sequence's blocks into job.payload.
  void gather_payload(const Sequence& seq, TransferJob& job) const;
  // The decoder named by the request, each missing part from the LMCache config's pd_peer_*;
  // nullopt when still incomplete (the job then fails with "no decoder").
  std::optional<ReceiverAddress> receiver_for(const DisaggSpec& spec) const;

  KvConnectorConfig config_;
  KvCacheIo& kv_;
  std::string model_fingerprint_;
  KvChunkLayout layout_;
  LayoutFingerprint layout_fingerprint_;
  SenderChannel channel_;
};

}  // namespace tandem
