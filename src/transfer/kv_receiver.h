// KvReceiver: the decoder's connector (pd_role receiver). It owns the registered transfer buffer,
// the ReceiverRegistry and the ReceiverServer that fills them, and answers the engine: at a
// sequence's first admission, how much of its prompt can be loaded from received chunks (the
// longest run of chunk keys present, capped so that skip_last_n_tokens — at least one — tokens
// are computed: the prompt's last, or the first output token the prefiller handed over), then loads
// them into the sequence's fresh blocks and frees the pages of the request's transfer.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "engine/kv_connector.h"
#include "kv/kv_cache_io.h"
#include "transfer/kv_connector_config.h"
#include "transfer/kv_layout.h"
#include "transfer/receiver_registry.h"
#include "transfer/receiver_server.h"

namespace tandem {

class KvReceiver final : public KvConnector {
 public:
  // Allocates config.buffer_bytes through the transport (host memory registered with UCX, or
  // GPU memory shared by CUDA IPC) and listens on config.peer's ports (0: any free port). Throws
  // tandem::Error / TransportError. `kv` must outlive it.
  KvReceiver(const KvConnectorConfig& config, std::shared_ptr<Transport> transport, KvCacheIo& kv,
             std::string model_fingerprint);
  ~KvReceiver() override;

  uint16_t init_port() const { return server_->init_port(); }
  uint16_t alloc_port() const { return server_->alloc_port(); }

  bool transfer_arriving(const Sequence& seq) override;
  int num_loadable_tokens(const Sequence& seq, int num_computed) override;
  int load(const Sequence& seq, int num_computed, int num_tokens) override;
  void on_prompt_computed(const Sequence&) override {}
  void on_finished(const Sequence& seq) override;
  void abort_transfer(const std::string& transfer_id) override;
  KvConnectorStats stats() const override;

 private:
  // The prompt's chunk keys, and the most prompt tokens that may be loaded.
  std::vector<BlockHash> prompt_chunks(const Sequence& seq) const;
  int load_cap(const Sequence& seq) const;
  void release_transfer(const Sequence& seq);

  KvConnectorConfig config_;
  std::shared_ptr<Transport> transport_;
  KvCacheIo& kv_;
  std::string model_fingerprint_;
  KvChunkLayout layout_;
  std::unique_ptr<RegisteredBuffer> buffer_;
  ReceiverRegistry registry_;
  std::unique_ptr<ReceiverServer> server_;  // stops before the registry and buffer go
  std::atomic<uint64_t> prompt_tokens_received_{0};
};

}  // namespace tandem
