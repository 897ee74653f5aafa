// KvSender: which requests are pushed, and gathering their chunks into one payload.
#include "transfer/kv_sender.h"

#include "core/error.h"
#include "core/logging.h"
#include "engine/sequence.h"
#include "transfer/chunk_hash.h"

namespace tandem {

KvSender::KvSender(const KvConnectorConfig& config, std::shared_ptr<Transport> transport,
                   KvCacheIo& kv, std::string model_fingerprint)
    : config_(config),
      kv_(kv),
      model_fingerprint_(std::move(model_fingerprint)),
      layout_(KvChunkLayout::from_shape(kv.shape())),
      layout_fingerprint_(layout_.fingerprint(model_fingerprint_)),
      channel_(config, std::move(transport)) {
  // The staging budget is set aside out of the GPU memory already (pd_buffer_size): take it now,
  // so the first request's gather does not wait for the pool to grow (~1 GB of mappings).
  kv_.reserve_payloads(config_.buffer_bytes);
}

void KvSender::on_prompt_computed(const Sequence& seq) {
  if (!seq.kv_transfer || !seq.kv_transfer->disagg_spec) return;  // not a disaggregated request
  if (seq.num_output_tokens() > 0) return;  // recomputed after preemption: pushed the first time
  TransferJob job;
  try {
    job = plan(seq);
    uint64_t bytes = 0;
    for (const ChunkDesc& c : job.chunks) bytes += c.num_bytes;
    // Backpressure: while the staging budget is taken by transfers the decoder has no room for
    // yet (it takes them more slowly than prompts are computed), the engine waits here, the
    // sequence's blocks still held, until one ends — rather than failing this transfer.
    const auto deadline = std::chrono::steady_clock::now() + config_.transfer_timeout;
    switch (bytes == 0 ? SenderChannel::StagingWait::kRoom
                       : channel_.wait_for_staging(job.request_id, bytes, deadline)) {
      case SenderChannel::StagingWait::kRoom:
        if (bytes > 0) gather_payload(seq, job);
        break;
      case SenderChannel::StagingWait::kCancelled:  // submit drops the job, payload or not
      case SenderChannel::StagingWait::kStopping:
        break;
      case SenderChannel::StagingWait::kTooLarge:
        job.failure = fmt::format("the prompt's KV ({} bytes) is larger than the prefiller's "
                                  "transfer staging, pd_buffer_size {}",
                                  bytes, config_.buffer_bytes);
        break;
      case SenderChannel::StagingWait::kTimedOut:
        job.failure = fmt::format("the prefiller's transfer staging stayed full for {} ms "
                                  "(pd_transfer_timeout_sec): {} more bytes asked, pd_buffer_size "
                                  "is {}",
                                  config_.transfer_timeout.count(), bytes, config_.buffer_bytes);
        break;
    }
  } catch (const Error& e) {
    // A failed gather is a failed transfer, not a failed request: the channel reports it.
    job = TransferJob{};
    job.request_id = seq.kv_transfer->disagg_spec->req_id;
    job.failure = fmt::format("gathering the prompt's KV failed: {}", e.what());
  }
  channel_.submit(std::move(job));
}

std::optional<ReceiverAddress> KvSender::receiver_for(const DisaggSpec& spec) const {
  ReceiverAddress r = config_.peer.value_or(ReceiverAddress{});
  if (spec.receiver_host) r.host = *spec.receiver_host;
  if (!spec.receiver_init_port.empty()) r.init_port = spec.receiver_init_port[0];
  if (!spec.receiver_alloc_port.empty()) r.alloc_port = spec.receiver_alloc_port[0];
  if (r.host.empty() || r.init_port <= 0 || r.alloc_port <= 0) return std::nullopt;
  return r;
}

TransferJob KvSender::plan(const Sequence& seq) const {
  const DisaggSpec& spec = *seq.kv_transfer->disagg_spec;
  TransferJob job;
  job.request_id = spec.req_id;
  job.fingerprint = layout_fingerprint_;
  job.receiver = receiver_for(spec);

  std::span<const int32_t> prompt(seq.token_ids.data(), size_t(seq.num_prompt_tokens));
  std::vector<BlockHash> hashes = chunk_hashes(model_fingerprint_, prompt, config_.chunk_size,
                                               config_.partial_chunks, seq.cache_salt);
  for (size_t i = 0; i < hashes.size(); ++i) {
    int n = chunk_num_tokens(seq.num_prompt_tokens, config_.chunk_size, int64_t(i));
    job.chunks.push_back({hashes[i], uint32_t(n), layout_.chunk_bytes(n)});
  }
  return job;
}

void KvSender::gather_payload(const Sequence& seq, TransferJob& job) const {
  std::vector<uint32_t> chunk_tokens;
  for (const ChunkDesc& c : job.chunks) chunk_tokens.push_back(c.num_tokens);
  if (!chunk_tokens.empty()) {
    job.payload = kv_.gather_chunks(seq.blocks.table, chunk_tokens, config_.chunk_size);
  }
}

KvConnectorStats KvSender::stats() const {
  SenderChannelStats s = channel_.stats();
  KvConnectorStats out;
  out.transfers_sent = s.transfers_sent;
  out.transfer_failures = s.transfer_failures;
  out.bytes_sent = s.bytes_sent;
  out.transfer_seconds = s.transfer_seconds;
  out.write_seconds = s.write_seconds;
  return out;
}

}  // namespace tandem
