// make_kv_connector: picks the sender or receiver connector.
#include "transfer/kv_connector_factory.h"

#include "core/error.h"
#include "engine/model_runner.h"
#include "transfer/kv_receiver.h"
#include "transfer/kv_sender.h"

namespace tandem {

std::string transfer_model_fingerprint(const ModelConfig& model, const KvCacheShape& kv) {
  KvCacheShape shape = kv;
  shape.block_size = 0;  // chunks are gathered token by token: the block size does not matter
  shape.num_blocks = 0;
  return model_fingerprint(model, shape);
}

std::unique_ptr<KvConnector> make_kv_connector(const KvConnectorConfig& config,
                                               std::shared_ptr<Transport> transport,
                                               KvCacheIo& kv, const ModelConfig& model) {
  TANDEM_CHECK(transport != nullptr, "KV connector: no transport given");
  std::string fingerprint = transfer_model_fingerprint(model, kv.shape());
  if (config.role == PdRole::kSender) {
    return std::make_unique<KvSender>(config, std::move(transport), kv, std::move(fingerprint));
  }
  return std::make_unique<KvReceiver>(config, std::move(transport), kv, std::move(fingerprint));
}

}  // namespace tandem
