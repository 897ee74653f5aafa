// IpcBufferKey: the "remote key" a decoder announces (HelloAck rkey) for a transfer buffer in GPU
// memory shared by CUDA IPC: which node and GPU it is on and the opaque cudaIpcMemHandle_t a
// prefiller on the same node opens to write into it. Plain bytes, no CUDA types, so the codec is
// built and tested everywhere:
//   magic "TDCUDAIPC" (9 bytes) | u16 version | str host_id | str device | u32 64 | 64-byte handle
// A UCX rkey never starts with the magic (it begins with UCX's own packed header), so one field
// carries either kind.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tandem {

inline constexpr size_t kCudaIpcHandleBytes = 64;  // sizeof(cudaIpcMemHandle_t)

struct IpcBufferKey {
  std::string host_id;  // this_host_id() of the owning process: equal means the same node
  std::string device;   // the owning GPU, for messages: "GPU 0 (PCI 0000:1b:00.0)"
  std::array<uint8_t, kCudaIpcHandleBytes> handle{};
  bool operator==(const IpcBufferKey&) const = default;
};

std::vector<uint8_t> encode_ipc_buffer_key(const IpcBufferKey& key);

// Whether `rkey` is an IpcBufferKey (starts with the magic), valid or not.
bool is_ipc_buffer_key(std::span<const uint8_t> rkey);

// Decodes a key that is_ipc_buffer_key; throws WireError naming the field for a malformed one.
IpcBufferKey decode_ipc_buffer_key(std::span<const uint8_t> rkey);

// Names this node for IpcBufferKey::host_id: the host name and the kernel's boot id.
std::string this_host_id();

}  // namespace tandem
