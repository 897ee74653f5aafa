// The GPU memory a CUDA engine's KV pool leaves for the KV transfer: the sender's payload queue
// and a receiver's GPU transfer buffer (pd_buffer_size), nothing on the CPU or in host memory.
#include "engine/kv_transfer_reserve.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

EngineConfig cuda_engine(PdRole role, PdBufferDevice buffer_device) {
  EngineConfig c;
  c.device = Device::kCuda;
  KvConnectorConfig kv;
  kv.role = role;
  kv.buffer_device = buffer_device;
  kv.buffer_bytes = 3ull << 30;
  c.kv_connector = kv;
  return c;
}

TEST(KvTransferReserve, SenderPayloadsWaitOnTheGpu) {
  EXPECT_EQ(kv_transfer_gpu_bytes(cuda_engine(PdRole::kSender, PdBufferDevice::kCuda)), 3ull << 30);
  // The receiver's buffer device does not move the sender's gathered payloads off the GPU.
  EXPECT_EQ(kv_transfer_gpu_bytes(cuda_engine(PdRole::kSender, PdBufferDevice::kCpu)), 3ull << 30);
}

TEST(KvTransferReserve, ReceiverBufferCountsOnlyInGpuMemory) {
  EXPECT_EQ(kv_transfer_gpu_bytes(cuda_engine(PdRole::kReceiver, PdBufferDevice::kCuda)),
            3ull << 30);
  EXPECT_EQ(kv_transfer_gpu_bytes(cuda_engine(PdRole::kReceiver, PdBufferDevice::kCpu)), 0u);
}

TEST(KvTransferReserve, NothingOnTheCpuOrWithoutAConnector) {
  EngineConfig cpu = cuda_engine(PdRole::kReceiver, PdBufferDevice::kCuda);
  cpu.device = Device::kCpu;
  EXPECT_EQ(kv_transfer_gpu_bytes(cpu), 0u);
  EngineConfig plain;
  plain.device = Device::kCuda;
  EXPECT_EQ(kv_transfer_gpu_bytes(plain), 0u);
}

}  // namespace
}  // namespace tandem
