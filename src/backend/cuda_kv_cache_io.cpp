// CudaKvCacheIo: gathers into pool memory on the io stream, scatters from GPU or host memory,
// both through the kv_chunk_copy kernel after the host-side range checks of kv_layout.h.
#include "backend/cuda_kv_cache_io.h"

#include <cstdint>

#include "core/error.h"
#include "transfer/kv_layout.h"

namespace tandem {
namespace {

using cuda::check_cuda;

// A request's KV gathered into stream-ordered GPU memory; `ready` marks the gather's end.
class DeviceKvPayload final : public KvPayload {
 public:
  DeviceKvPayload(uint8_t* data, uint64_t size, cudaEvent_t ready, cudaStream_t stream, int device)
      : data_(data), size_(size), ready_(ready), stream_(stream), device_(device) {}
  ~DeviceKvPayload() override {
    cudaSetDevice(device_);
    cudaEventSynchronize(ready_);
    cudaFreeAsync(data_, stream_);
    cudaEventDestroy(ready_);
  }
  DeviceKvPayload(const DeviceKvPayload&) = delete;
  DeviceKvPayload& operator=(const DeviceKvPayload&) = delete;

  MemoryKind memory() const override { return MemoryKind::kCuda; }
  uint64_t size() const override { return size_; }
  const uint8_t* ready_data() override {
    check_cuda(cudaEventSynchronize(ready_), "KV gather");
    return data_;
  }
  std::span<const uint8_t> host_bytes() override {
    if (host_.size() != size_) {
      const uint8_t* device_bytes = ready_data();
      check_cuda(cudaSetDevice(device_), "cudaSetDevice (KV download)");
      host_.resize(size_);
      check_cuda(cudaMemcpy(host_.data(), device_bytes, size_, cudaMemcpyDeviceToHost),
                 "KV download for host staging");
    }
    return host_;
  }

 private:
  uint8_t* data_;  // (size_) bytes from cudaMallocAsync on stream_
  uint64_t size_;
  cudaEvent_t ready_;
  cudaStream_t stream_;
  int device_;
  std::vector<uint8_t> host_;  // the host copy, once asked for
};

}  // namespace

CudaKvCacheIo::CudaKvCacheIo(const CudaKvCacheView& view) : view_(view) {
  TANDEM_CHECK(view.shape.dtype == DType::kBF16 &&
                   int(view.k_layers.size()) == view.shape.num_layers &&
                   view.k_layers.size() == view.v_layers.size(),
               "CudaKvCacheIo: a bf16 cache with one K and one V array per layer is required");
  check_cuda(cudaSetDevice(view.device), "cudaSetDevice (KV io)");
  check_cuda(cudaStreamCreateWithFlags(&io_stream_, cudaStreamNonBlocking), "KV io stream");
  check_cuda(cudaEventCreateWithFlags(&model_done_, cudaEventDisableTiming), "KV io event");
  k_ptrs_ = cuda::to_device(view.k_layers);
  v_ptrs_ = cuda::to_device(view.v_layers);
  // Freed payloads stay in the pool for the next request instead of going back to the driver.
  cudaMemPool_t pool = nullptr;
  check_cuda(cudaDeviceGetDefaultMemPool(&pool, view.device), "default memory pool");
  uint64_t keep = UINT64_MAX;
  check_cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep),
             "memory pool release threshold");
}

CudaKvCacheIo::~CudaKvCacheIo() {
  cudaSetDevice(view_.device);
  if (io_stream_) cudaStreamSynchronize(io_stream_);
  if (model_done_) cudaEventDestroy(model_done_);
  if (io_stream_) cudaStreamDestroy(io_stream_);
}

int32_t* CudaKvCacheIo::upload_table(std::span<const int32_t> block_table) {
  void* table = nullptr;
  check_cuda(cudaMallocAsync(&table, block_table.size_bytes(), io_stream_), "block table alloc");
  check_cuda(cudaMemcpyAsync(table, block_table.data(), block_table.size_bytes(),
                             cudaMemcpyHostToDevice, io_stream_),
             "block table upload");
  return static_cast<int32_t*>(table);
}

cuda::KvChunkCopyParams CudaKvCacheIo::cache_side(const int32_t* table) const {
  cuda::KvChunkCopyParams p;
  p.k_layers = k_ptrs_.data();
  p.v_layers = v_ptrs_.data();
  p.num_layers = view_.shape.num_layers;
  p.slot_elems = view_.shape.slot_floats();
  p.block_size = view_.shape.block_size;
  p.block_table = table;
  return p;
}

std::unique_ptr<KvPayload> CudaKvCacheIo::gather_chunks(std::span<const int32_t> block_table,
                                                        std::span<const uint32_t> chunk_tokens,
                                                        int chunk_size) {
  TANDEM_CHECK(!chunk_tokens.empty() && chunk_size > 0, "KV gather: no chunks");
  int64_t total = 0;
  for (size_t i = 0; i < chunk_tokens.size(); ++i) {
    TANDEM_CHECK(chunk_tokens[i] > 0 && chunk_tokens[i] <= uint32_t(chunk_size) &&
                     (i + 1 == chunk_tokens.size() || chunk_tokens[i] == uint32_t(chunk_size)),
                 "KV gather: chunk {} has {} tokens; every chunk but the last must have {}", i,
                 chunk_tokens[i], chunk_size);
    total += chunk_tokens[i];
  }
  check_chunk_tokens(view_.shape, block_table, 0, int(total));
  const uint64_t bytes = KvChunkLayout::from_shape(view_.shape).chunk_bytes(int(total));

  check_cuda(cudaSetDevice(view_.device), "cudaSetDevice (KV gather)");
  check_cuda(cudaEventRecord(model_done_, view_.model_stream), "KV gather");
  check_cuda(cudaStreamWaitEvent(io_stream_, model_done_), "KV gather");
  void* out = nullptr;
  if (cudaError_t e = cudaMallocAsync(&out, bytes, io_stream_); e != cudaSuccess) {
    cudaGetLastError();
    fail("no GPU memory for the {}-byte KV payload: {}", bytes, cudaGetErrorString(e));
  }
  int32_t* table = upload_table(block_table);
  cuda::KvChunkCopyParams p = cache_side(table);
  p.first_token = 0;
  p.run_tokens = total;
  p.chunk_size = chunk_size;
  p.copy_begin = 0;
  p.copy_end = total;
  p.chunks = static_cast<cuda::bf16*>(out);
  p.direction = cuda::KvCopyDirection::kCacheToChunks;
  const cudaError_t launch = cuda::kv_chunk_copy(p, io_stream_);
  cudaFreeAsync(table, io_stream_);
  cudaEvent_t ready = nullptr;
  check_cuda(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "KV gather event");
  check_cuda(cudaEventRecord(ready, io_stream_), "KV gather event");
  auto payload = std::make_unique<DeviceKvPayload>(static_cast<uint8_t*>(out), bytes, ready,
                                                   io_stream_, view_.device);
  check_cuda(launch, "KV gather (kv_chunk_copy)");
  // The engine's next forward pass may overwrite these blocks (the request is done with them):
  // the gather, well under a millisecond per GB, ends first. (A host wait rather than a
  // cross-stream one keeps the model stream free of dependencies when it captures CUDA graphs.)
  check_cuda(cudaEventSynchronize(ready), "KV gather");
  return payload;
}

void CudaKvCacheIo::scatter_chunk_tokens(const uint8_t* in, uint64_t in_bytes, MemoryKind in_memory,
                                         int chunk_tokens, int begin, int end,
                                         std::span<const int32_t> block_table,
                                         int64_t first_token) {
  TANDEM_CHECK(0 <= begin && begin < end && end <= chunk_tokens,
               "KV chunk: tokens [{}, {}) are not inside a chunk of {} tokens", begin, end,
               chunk_tokens);
  check_chunk_tokens(view_.shape, block_table, first_token + begin, end - begin);
  const uint64_t expected = KvChunkLayout::from_shape(view_.shape).chunk_bytes(chunk_tokens);
  TANDEM_CHECK(in_bytes == expected, "KV chunk: {} tokens take {} bytes, the buffer has {}",
               chunk_tokens, expected, in_bytes);
  check_cuda(cudaSetDevice(view_.device), "cudaSetDevice (KV scatter)");
  check_cuda(cudaEventRecord(model_done_, view_.model_stream), "KV scatter");
  check_cuda(cudaStreamWaitEvent(io_stream_, model_done_), "KV scatter");
  const uint8_t* source = in;
  if (in_memory == MemoryKind::kHost) {  // host staging (pd_buffer_device cpu): upload first
    if (upload_.size() < in_bytes) {
      check_cuda(cudaStreamSynchronize(io_stream_), "KV scatter");
      upload_ = cuda::DeviceBuffer<uint8_t>(in_bytes);
    }
    check_cuda(cudaMemcpyAsync(upload_.data(), in, in_bytes, cudaMemcpyHostToDevice, io_stream_),
               "KV upload for scatter");
    source = upload_.data();
  }
  int32_t* table = upload_table(block_table);
  cuda::KvChunkCopyParams p = cache_side(table);
  p.first_token = first_token;
  p.run_tokens = chunk_tokens;
  p.chunk_size = chunk_tokens;
  p.copy_begin = begin;
  p.copy_end = end;
  p.chunks = reinterpret_cast<cuda::bf16*>(const_cast<uint8_t*>(source));
  p.direction = cuda::KvCopyDirection::kChunksToCache;
  const cudaError_t launch = cuda::kv_chunk_copy(p, io_stream_);
  cudaFreeAsync(table, io_stream_);
  check_cuda(launch, "KV scatter (kv_chunk_copy)");
}

void CudaKvCacheIo::reserve_payloads(uint64_t bytes) {
  if (bytes == 0) return;
  check_cuda(cudaSetDevice(view_.device), "cudaSetDevice (KV payload reserve)");
  void* block = nullptr;
  if (cudaMallocAsync(&block, bytes, io_stream_) != cudaSuccess) {
    cudaGetLastError();  // no room now: the first gather asks again (and says so if it fails)
    return;
  }
  check_cuda(cudaFreeAsync(block, io_stream_), "KV payload reserve");
  check_cuda(cudaStreamSynchronize(io_stream_), "KV payload reserve");
}

void CudaKvCacheIo::finish_scatters() {
  check_cuda(cudaSetDevice(view_.device), "cudaSetDevice (KV scatter)");
  check_cuda(cudaStreamSynchronize(io_stream_), "KV scatter");
}

}  // namespace tandem
