// embedding: one block per token row, threads striding over the row's elements.
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/launch.cuh"

namespace tandem::cuda {
namespace {

__global__ void embedding_kernel(const bf16* table, int64_t vocab_size, int64_t dim,
                                 const int32_t* ids, float* out) {
  wait_for_previous_kernel();
  const int64_t row = blockIdx.x;
  const int32_t id = ids[row];
  float* dst = out + row * dim;
  const bool valid = id >= 0 && id < vocab_size;
  const bf16* src = table + int64_t(valid ? id : 0) * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = valid ? to_float(src[i]) : 0.0f;
}

}  // namespace

cudaError_t embedding(const bf16* table, int64_t vocab_size, int64_t dim, const int32_t* ids,
                      int64_t n, float* out, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (dim <= 0 || vocab_size <= 0 || n > INT32_MAX) return cudaErrorInvalidValue;
  return launch_kernel(embedding_kernel, unsigned(n), 256, 0, stream, table, vocab_size, dim, ids,
                       out);
}

}  // namespace tandem::cuda
