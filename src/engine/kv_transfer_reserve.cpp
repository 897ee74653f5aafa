#include "engine/kv_transfer_reserve.h"

namespace tandem {

uint64_t kv_transfer_gpu_bytes(const EngineConfig& config) {
  if (config.device != Device::kCuda || !config.kv_connector) return 0;
  const KvConnectorConfig& c = *config.kv_connector;
  const bool on_gpu = c.role == PdRole::kSender || c.buffer_device == PdBufferDevice::kCuda;
  return on_gpu ? c.buffer_bytes : 0;
}

}  // namespace tandem
