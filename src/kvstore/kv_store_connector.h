// KvStoreConnector: the KV tiers as the engine sees them (a KvConnector). At a sequence's first
// admission it finds the longest run of the prompt's chunks, from the one holding the first
// token the prefix cache lacks, that the tiers hold (CPU, then disk), stages them, and loads
// them into the sequence's blocks — so a prompt reuses its longest cached prefix across the
// engine's cache, the CPU tier and the disk, and computes only the rest. When the prompt's KV
// is computed it gathers the chunks the tiers lack and stores them (disk writes in the
// background). One log line per request: prompt tokens, hits by tier, tokens to compute.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/kv_connector.h"
#include "kv/kv_cache.h"
#include "kvstore/chunk_store.h"
#include "kvstore/kv_store_config.h"
#include "transfer/kv_layout.h"

namespace tandem {

class KvStoreConnector final : public KvConnector {
 public:
  // `kv` (host memory) must outlive the connector; `model_fingerprint` roots the chunk keys
  // (transfer_model_fingerprint: the same keys as the PD transfer's).
  KvStoreConnector(const KvStoreConfig& config, KvCache& kv, std::string model_fingerprint);

  bool transfer_arriving(const Sequence&) override { return false; }
  int num_loadable_tokens(const Sequence& seq, int num_computed) override;
  int load(const Sequence& seq, int num_computed, int num_tokens) override;
  void on_prompt_computed(const Sequence& seq) override;
  void on_finished(const Sequence& seq) override;
  void abort_transfer(const std::string&) override {}  // the tiers hold no transfers
  KvConnectorStats stats() const override;

  ChunkStore& store() { return store_; }

 private:
  // Chunks found for a waiting sequence, kept from the lookup to the load so that nothing
  // evicted in between (or a file changed on disk) can make the load differ from the lookup.
  struct Staged {
    int first_chunk = 0;
    std::vector<ChunkStore::Found> chunks;  // chunks first_chunk, first_chunk + 1, ...
  };

  std::vector<BlockHash> prompt_chunks(const Sequence& seq) const;

  KvStoreConfig config_;
  KvCache& kv_;
  std::string model_fingerprint_;
  KvChunkLayout layout_;
  ChunkStore store_;
  std::unordered_map<std::string, Staged> staged_;  // by request id; engine thread only
};

}  // namespace tandem
