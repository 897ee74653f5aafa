// KvConnector: the engine's view of a KV connector (the top layer of STYLE habit 7: which
// request, which chunks, when) — disaggregated prefill (transfer/kv_sender.h,
// transfer/kv_receiver.h) and the CPU/disk KV tiers (kvstore/kv_store_connector.h), chained by
// engine/kv_connector_chain.h when an engine has both. The engine thread calls these hooks; the
// implementations do their network and disk work on their own threads, so no hook waits for a
// peer or a disk write — except the sender's on_prompt_computed while its transfer staging is
// full (backpressure: transfer/kv_sender.h).
#pragma once
#include <cstdint>
#include <string>

#include "kvstore/chunk_tier_stats.h"

namespace tandem {

struct Sequence;

// Counters for /metrics (a snapshot; totals since start).
struct KvConnectorStats {
  uint64_t prompt_tokens_received = 0;  // receiver: prompt tokens whose KV was loaded
  uint64_t transfers_received = 0;      // receiver: TransferDone messages accepted
  uint64_t buffer_bytes_used = 0;       // receiver: transfer-buffer pages held now
  uint64_t transfers_sent = 0;          // sender: transfers completed
  uint64_t transfer_failures = 0;       // sender: transfers aborted
  uint64_t bytes_sent = 0;              // sender: KV bytes put into receivers' buffers
  double transfer_seconds = 0;  // sender: summed over sent transfers, AllocRequest to TransferDone
  double write_seconds = 0;     // sender: summed over sent transfers, first put to flush done
  KvTierStats tiers;            // the CPU and disk KV tiers (KvStoreConnector)
};

class KvConnector {
 public:
  virtual ~KvConnector() = default;

  // Whether a waiting sequence's transfer is still arriving (allocated here, TransferDone not
  // yet in): the scheduler admits other sequences first rather than compute what is on its way.
  virtual bool transfer_arriving(const Sequence& seq) = 0;
  // At a sequence's first admission, when its first `num_computed` tokens are already in the
  // cache (prefix cache): how many of the following prompt tokens it could load now. Never more
  // than leaves one prompt token to compute (the model must produce logits).
  virtual int num_loadable_tokens(const Sequence& seq, int num_computed) = 0;
  // At a sequence's first admission, once its blocks cover at least num_computed + num_tokens
  // tokens: loads the KV of tokens [num_computed, num_computed + num_tokens) into them and
  // returns how many leading tokens it loaded (fewer when chunks went away in between). Called
  // with num_tokens 0 too: the transfer named by the request is done with either way.
  virtual int load(const Sequence& seq, int num_computed, int num_tokens) = 0;
  // The sequence's prompt KV has just been computed (its blocks are still held): push it.
  virtual void on_prompt_computed(const Sequence& seq) = 0;
  // The sequence finished (stop, length, abort or error).
  virtual void on_finished(const Sequence& seq) = 0;
  // Thread-safe. Transfer `transfer_id` is abandoned by the proxy (its client left, or the
  // transfer failed there): drop its KV —
  // a sender its queued or waiting job (and any job for it that comes later), a receiver its
  // pages (at once, or as soon as the sender finishes writing them).
  virtual void abort_transfer(const std::string& transfer_id) = 0;

  [[nodiscard]] virtual KvConnectorStats stats() const = 0;
};

}  // namespace tandem
