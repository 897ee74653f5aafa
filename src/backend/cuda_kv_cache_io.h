// CudaKvCacheIo: the KV connector's access to the CUDA backend's bf16 paged cache. Gathers run on
// a stream of their own, after the forward passes already enqueued and finished before the engine
// goes on, into device memory from a stream-ordered pool (the payload the prefiller puts by CUDA
// IPC);
// scatters read the decoder's transfer buffer in GPU memory (or host memory, uploaded first) and
// write the sequence's blocks. Built only under TANDEM_CUDA.
#pragma once
#include <cuda_runtime.h>

#include <vector>

#include "backend/cuda_buffer.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kv_chunk_copy.cuh"
#include "kv/kv_cache_io.h"

namespace tandem {

// The cache the io works on: per-layer K and V arrays, as CudaModel holds them.
struct CudaKvCacheView {
  KvCacheShape shape;                   // bf16, num_blocks blocks of block_size tokens
  std::vector<cuda::bf16*> k_layers;    // (num_layers) device pointers, each (slots, kv, hd)
  std::vector<cuda::bf16*> v_layers;    // the same for V
  cudaStream_t model_stream = nullptr;  // where the forward passes run
  int device = 0;
};

class CudaKvCacheIo final : public KvCacheIo {
 public:
  explicit CudaKvCacheIo(const CudaKvCacheView& view);
  ~CudaKvCacheIo() override;
  CudaKvCacheIo(const CudaKvCacheIo&) = delete;
  CudaKvCacheIo& operator=(const CudaKvCacheIo&) = delete;

  KvCacheShape shape() const override { return view_.shape; }
  MemoryKind memory() const override { return MemoryKind::kCuda; }
  std::unique_ptr<KvPayload> gather_chunks(std::span<const int32_t> block_table,
                                           std::span<const uint32_t> chunk_tokens,
                                           int chunk_size) override;
  void scatter_chunk_tokens(const uint8_t* in, uint64_t in_bytes, MemoryKind in_memory,
                            int chunk_tokens, int begin, int end,
                            std::span<const int32_t> block_table, int64_t first_token) override;
  void finish_scatters() override;
  // Grows the payloads' memory pool (which keeps what is freed) to `bytes` at once.
  void reserve_payloads(uint64_t bytes) override;

 private:
  // Uploads `block_table` into stream-ordered memory on io_stream_ (freed after the next launch).
  int32_t* upload_table(std::span<const int32_t> block_table);
  // The copy's cache side: this engine's layers and blocks, through the device `table`.
  cuda::KvChunkCopyParams cache_side(const int32_t* table) const;

  CudaKvCacheView view_;
  cudaStream_t io_stream_ = nullptr;
  cudaEvent_t model_done_ = nullptr;        // recorded on the model stream before a gather
  cuda::DeviceBuffer<cuda::bf16*> k_ptrs_;  // (num_layers) view_.k_layers on the device
  cuda::DeviceBuffer<cuda::bf16*> v_ptrs_;
  cuda::DeviceBuffer<uint8_t> upload_;  // host-memory chunks uploaded before a scatter
};

}  // namespace tandem
