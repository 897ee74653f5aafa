// CudaIpcTransport: the device buffer (cudaMalloc + cudaIpcGetMemHandle), the process-wide table
// of opened peer buffers, and the connection that puts through them.
#include "transfer/cuda_ipc_transport.h"

#include <cuda_runtime.h>

#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "backend/cuda_buffer.h"
#include "core/logging.h"
#include "transfer/ipc_buffer_key.h"

namespace tandem {
namespace {

using cuda::check_cuda;
using Clock = std::chrono::steady_clock;

std::string describe_device(int device) {
  char bus[64] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof(bus), device) != cudaSuccess) bus[0] = '\0';
  return fmt::format("GPU {} (PCI {})", device, bus);
}

// A transfer buffer in this process's GPU memory that peers on the node open by IPC handle.
class CudaIpcBuffer final : public RegisteredBuffer {
 public:
  CudaIpcBuffer(size_t bytes, int device) : size_(bytes) {
    TANDEM_CHECK(bytes > 0, "CUDA IPC: a transfer buffer of 0 bytes");
    check_cuda(cudaSetDevice(device), "cudaSetDevice (transfer buffer)");
    const cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&data_), bytes);
    if (e != cudaSuccess) {
      data_ = nullptr;
      fail("CUDA IPC: cannot allocate the {}-byte transfer buffer (pd_buffer_size) on {}: {}",
           bytes, describe_device(device), cudaGetErrorString(e));
    }
    cudaIpcMemHandle_t handle;
    check_cuda(cudaIpcGetMemHandle(&handle, data_), "cudaIpcGetMemHandle");
    static_assert(sizeof(handle) == kCudaIpcHandleBytes);
    std::memcpy(key_.handle.data(), &handle, sizeof(handle));
    key_.host_id = this_host_id();
    key_.device = describe_device(device);
  }
  ~CudaIpcBuffer() override { cudaFree(data_); }

  uint8_t* data() override { return data_; }
  size_t size() const override { return size_; }
  MemoryKind memory() const override { return MemoryKind::kCuda; }
  RemoteBufferInfo remote_info() const override {
    return {reinterpret_cast<uint64_t>(data_), size_, encode_ipc_buffer_key(key_)};
  }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  IpcBufferKey key_;
};

// Peer buffers this process has opened, shared by every connection to the same buffer: a handle
// is opened once per process and closed when its last user goes.
class OpenedPeerBuffers {
 public:
  static OpenedPeerBuffers& instance() {
    static OpenedPeerBuffers table;
    return table;
  }
  uint8_t* open(const IpcBufferKey& key) {
    std::lock_guard lock(mutex_);
    Entry& e = entries_[key.handle];
    if (e.refs == 0) {
      cudaIpcMemHandle_t handle;
      std::memcpy(&handle, key.handle.data(), sizeof(handle));
      void* ptr = nullptr;
      const cudaError_t status =
          cudaIpcOpenMemHandle(&ptr, handle, cudaIpcMemLazyEnablePeerAccess);
      if (status != cudaSuccess) {
        entries_.erase(key.handle);
        cudaGetLastError();
        throw TransportError(fmt::format(
            "CUDA IPC: cannot open the decoder's transfer buffer on {}: {} (both engines must "
            "run on one node and see both GPUs: choose each one's GPU with --cuda-device, not "
            "CUDA_VISIBLE_DEVICES; or use pd_buffer_device: cpu)",
            key.device, cudaGetErrorString(status)));
      }
      e.ptr = static_cast<uint8_t*>(ptr);
    }
    ++e.refs;
    return e.ptr;
  }
  void close(const IpcBufferKey& key) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key.handle);
    if (it == entries_.end() || --it->second.refs > 0) return;
    cudaIpcCloseMemHandle(it->second.ptr);
    entries_.erase(it);
  }

 private:
  struct Entry {
    uint8_t* ptr = nullptr;
    int refs = 0;
  };
  std::mutex mutex_;
  std::map<std::array<uint8_t, kCudaIpcHandleBytes>, Entry> entries_;
};

// A control connection of the inner transport whose puts go through CUDA IPC once an IPC buffer
// is attached (and through the inner connection for a UCX rkey).
class CudaIpcConnection final : public Connection {
 public:
  CudaIpcConnection(std::unique_ptr<Connection> inner, int device)
      : inner_(std::move(inner)), device_(device) {}
  ~CudaIpcConnection() override {
    release_peer();
    if (stream_) cudaStreamDestroy(stream_);
  }

  void send(std::span<const uint8_t> frame) override { inner_->send(frame); }
  std::optional<std::vector<uint8_t>> recv(std::chrono::milliseconds timeout) override {
    return inner_->recv(timeout);
  }
  bool is_broken() const override { return inner_->is_broken(); }
  std::string peer_name() const override { return inner_->peer_name(); }
  std::string peer_address() const override { return inner_->peer_address(); }
  void close() override { inner_->close(); }

  void attach_remote_buffer(const RemoteBufferInfo& info) override {
    std::lock_guard lock(mutex_);
    release_peer();
    if (!is_ipc_buffer_key(info.rkey)) {  // a host buffer: UCX puts from host memory
      inner_->attach_remote_buffer(info);
      return;
    }
    IpcBufferKey key = decode_ipc_buffer_key(info.rkey);
    TANDEM_CHECK(info.size > 0, "CUDA IPC: {} announced an empty buffer", peer_name());
    const std::string here = this_host_id();
    if (key.host_id != here) {
      throw TransportError(fmt::format(
          "CUDA IPC: the decoder's transfer buffer is on another node ({}, this is {}); use "
          "pd_buffer_device: cpu to move KV between nodes",
          key.host_id, here));
    }
    check_cuda(cudaSetDevice(device_), "cudaSetDevice (KV put)");
    if (!stream_) check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
    peer_ = OpenedPeerBuffers::instance().open(key);
    key_ = std::move(key);
    peer_size_ = info.size;
    log_info("kv sender: writing into {}'s GPU buffer on {} by CUDA IPC ({} MiB)", peer_name(),
             key_->device, peer_size_ >> 20);
  }

  MemoryKind put_source_memory() const override {
    std::lock_guard lock(mutex_);
    return peer_ ? MemoryKind::kCuda : inner_->put_source_memory();
  }

  void put(const void* local, size_t size, uint64_t remote_offset) override {
    std::lock_guard lock(mutex_);
    if (!peer_) return inner_->put(local, size, remote_offset);
    TANDEM_CHECK(remote_offset <= peer_size_ && size <= peer_size_ - remote_offset,
                 "CUDA IPC: a put of {} bytes at offset {} falls outside {}'s {}-byte buffer",
                 size, remote_offset, peer_name(), peer_size_);
    check_cuda(cudaSetDevice(device_), "cudaSetDevice (KV put)");
    // cudaMemcpyDefault: the source may be this GPU's memory or host memory; the destination
    // is the peer's buffer, on this GPU or another one (a peer copy over NVLink).
    check_cuda(cudaMemcpyAsync(peer_ + remote_offset, local, size, cudaMemcpyDefault, stream_),
               "KV put (cudaMemcpyAsync)");
  }

  void flush(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    if (!peer_) {
      lock.unlock();
      return inner_->flush(timeout);
    }
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const cudaError_t e = cudaStreamQuery(stream_);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) {
        throw TransportError(
            fmt::format("CUDA IPC: a KV put to {} failed: {}", peer_name(), cudaGetErrorString(e)));
      }
      if (Clock::now() >= deadline) {
        throw TransportError(fmt::format("CUDA IPC: KV puts to {} did not finish in time",
                                         peer_name()));
      }
      std::this_thread::yield();
    }
  }

 private:
  void release_peer() {
    if (stream_) cudaStreamSynchronize(stream_);  // no copy may still use the mapping
    if (key_) OpenedPeerBuffers::instance().close(*key_);
    key_.reset();
    peer_ = nullptr;
    peer_size_ = 0;
  }

  std::unique_ptr<Connection> inner_;
  int device_;
  mutable std::mutex mutex_;  // guards the fields below
  cudaStream_t stream_ = nullptr;
  std::optional<IpcBufferKey> key_;
  uint8_t* peer_ = nullptr;  // the opened peer buffer (peer_size_ bytes), or null
  uint64_t peer_size_ = 0;
};

class CudaIpcTransport final : public Transport {
 public:
  CudaIpcTransport(std::shared_ptr<Transport> control, int device)
      : control_(std::move(control)), device_(device) {
    TANDEM_CHECK(control_ != nullptr, "CUDA IPC transport: no control transport");
    int count = 0;
    TANDEM_CHECK(cudaGetDeviceCount(&count) == cudaSuccess && device >= 0 && device < count,
                 "CUDA IPC transport: GPU {} is not available ({} visible)", device, count);
  }

  std::unique_ptr<Listener> listen(const std::string& host, uint16_t port) override {
    return control_->listen(host, port);  // the receiver's side only sends control messages
  }
  std::unique_ptr<Connection> connect(const std::string& host, uint16_t port,
                                      std::chrono::milliseconds timeout) override {
    return std::make_unique<CudaIpcConnection>(control_->connect(host, port, timeout), device_);
  }
  std::unique_ptr<RegisteredBuffer> allocate_buffer(size_t bytes) override {
    return std::make_unique<CudaIpcBuffer>(bytes, device_);
  }
  std::string name() const override { return "cuda-ipc+" + control_->name(); }

 private:
  std::shared_ptr<Transport> control_;
  int device_;
};

}  // namespace

std::shared_ptr<Transport> make_cuda_ipc_transport(std::shared_ptr<Transport> control, int device) {
  return std::make_shared<CudaIpcTransport>(std::move(control), device);
}

}  // namespace tandem
