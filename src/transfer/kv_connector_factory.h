// make_kv_connector: the engine's one entry into the transfer layer — the sender or receiver
// connector for a KvConnectorConfig, over the given transport and the engine's KV cache. Chunk
// keys and the layout fingerprint are rooted at the model's fingerprint with the block size left
// out, so a prefiller and a decoder with different --block-size still agree on every chunk.
#pragma once
#include <memory>

#include "engine/kv_connector.h"
#include "kv/kv_cache_io.h"
#include "model/model_config.h"
#include "transfer/kv_connector_config.h"
#include "transfer/transport.h"

namespace tandem {

// The model fingerprint chunk keys are rooted at (model_fingerprint without the block size).
std::string transfer_model_fingerprint(const ModelConfig& model, const KvCacheShape& kv);

// Throws tandem::Error (or TransportError when a receiver's ports are taken).
std::unique_ptr<KvConnector> make_kv_connector(const KvConnectorConfig& config,
                                               std::shared_ptr<Transport> transport,
                                               KvCacheIo& kv, const ModelConfig& model);

}  // namespace tandem
