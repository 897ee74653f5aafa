// KvReceiver: lookups and loads for the engine, over the registry the server fills.
#include "transfer/kv_receiver.h"

#include <algorithm>

#include "core/error.h"
#include "core/logging.h"
#include "engine/sequence.h"
#include "transfer/chunk_hash.h"

namespace tandem {
namespace {

constexpr uint32_t kPageSize = 4096;

const ReceiverAddress& checked_peer(const KvConnectorConfig& config) {
  TANDEM_CHECK(config.peer.has_value(),
               "kv receiver: the LMCache config names no pd_peer_host / pd_peer_init_port / "
               "pd_peer_alloc_port to listen on");
  return *config.peer;
}

}  // namespace

KvReceiver::KvReceiver(const KvConnectorConfig& config, std::shared_ptr<Transport> transport,
                       KvCacheIo& kv, std::string model_fingerprint)
    : config_(config),
      transport_(std::move(transport)),
      kv_(kv),
      model_fingerprint_(std::move(model_fingerprint)),
      layout_(KvChunkLayout::from_shape(kv.shape())),
      buffer_(transport_->allocate_buffer(config.buffer_bytes)),
      registry_(buffer_->size(), kPageSize, layout_.fingerprint(model_fingerprint_),
                config.transfer_timeout) {
  const ReceiverAddress& peer = checked_peer(config);
  server_ = std::make_unique<ReceiverServer>(
      *transport_, *buffer_, registry_,
      ReceiverServerParams{peer.host, peer.init_port, peer.alloc_port, config.peer_id, kPageSize,
                           PeerAllowlist(config.allowed_peer_hosts.empty()
                                             ? default_allowed_peer_hosts({peer.host})
                                             : config.allowed_peer_hosts,
                                         "pd_allowed_peer_hosts"),
                           config.heartbeat_interval, config.heartbeat_timeout});
  log_info("kv receiver: {} MiB transfer buffer in {} memory, init port {}, alloc port {}, "
           "chunk_size {}",
           buffer_->size() >> 20, buffer_->memory() == MemoryKind::kCuda ? "GPU" : "host",
           init_port(), alloc_port(), config.chunk_size);
}

KvReceiver::~KvReceiver() { server_.reset(); }

std::vector<BlockHash> KvReceiver::prompt_chunks(const Sequence& seq) const {
  std::span<const int32_t> prompt(seq.token_ids.data(), size_t(seq.num_prompt_tokens));
  return chunk_hashes(model_fingerprint_, prompt, config_.chunk_size, config_.partial_chunks,
                      seq.cache_salt);
}

// The sequence's last max(1, skip_last_n_tokens) tokens are computed here: the prompt's, or with
// a handed-over first token (which ends the sequence) one prompt token fewer.
int KvReceiver::load_cap(const Sequence& seq) const {
  return std::max(0, std::min(seq.num_prompt_tokens,
                              seq.num_tokens() - std::max(1, config_.skip_last_n_tokens)));
}

bool KvReceiver::transfer_arriving(const Sequence& seq) {
  return seq.kv_transfer && seq.kv_transfer->disagg_spec &&
         registry_.is_writing(seq.kv_transfer->disagg_spec->req_id);
}

int KvReceiver::num_loadable_tokens(const Sequence& seq, int num_computed) {
  const int cap = load_cap(seq);
  if (cap <= num_computed) return 0;
  std::vector<BlockHash> hashes = prompt_chunks(seq);
  int covered = 0;  // leading prompt tokens whose chunks are present
  registry_.visit_ready_prefix(hashes, [&](size_t i, const ChunkLocation& c) {
    int n = chunk_num_tokens(seq.num_prompt_tokens, config_.chunk_size, int64_t(i));
    if (c.num_tokens != uint32_t(n) || c.num_bytes != layout_.chunk_bytes(n)) return false;
    covered += n;
    return covered < cap;
  });
  return std::max(0, std::min(covered, cap) - num_computed);
}

int KvReceiver::load(const Sequence& seq, int num_computed, int num_tokens) {
  const int begin = num_computed, end = num_computed + num_tokens;
  int loaded_end = begin;  // tokens [begin, loaded_end) are in the sequence's blocks
  if (num_tokens > 0) {
    std::vector<BlockHash> hashes = prompt_chunks(seq);
    registry_.visit_ready_prefix(hashes, [&](size_t i, const ChunkLocation& c) {
      const int first = int(i) * config_.chunk_size;
      const int n = chunk_num_tokens(seq.num_prompt_tokens, config_.chunk_size, int64_t(i));
      if (c.num_tokens != uint32_t(n) || c.num_bytes != layout_.chunk_bytes(n)) return false;
      const int from = std::max(begin, first), to = std::min(end, first + n);
      if (from < to) {
        kv_.scatter_chunk_tokens(buffer_->data() + c.offset, c.num_bytes, buffer_->memory(), n,
                                 from - first, to - first, seq.blocks.table, first);
        loaded_end = to;
      }
      return first + n < end;
    });
    kv_.finish_scatters();  // before the pages go back to senders
  }
  prompt_tokens_received_ += uint64_t(loaded_end - begin);
  release_transfer(seq);
  return loaded_end - begin;
}

void KvReceiver::release_transfer(const Sequence& seq) {
  if (seq.kv_transfer && seq.kv_transfer->disagg_spec) {
    registry_.release(seq.kv_transfer->disagg_spec->req_id);
  }
}

void KvReceiver::on_finished(const Sequence& seq) { release_transfer(seq); }

void KvReceiver::abort_transfer(const std::string& transfer_id) {
  if (registry_.abandon(transfer_id, ReceiverRegistry::Clock::now())) {
    log_info("kv receiver: transfer {} abandoned by the proxy; its pages are freed", transfer_id);
  }
}

KvConnectorStats KvReceiver::stats() const {
  ReceiverRegistryStats s = registry_.stats();
  KvConnectorStats out;
  out.prompt_tokens_received = prompt_tokens_received_;
  out.transfers_received = s.transfers_received;
  out.buffer_bytes_used = s.buffer.used_bytes;
  return out;
}

}  // namespace tandem
