// gather_rows: one block per output row, each thread moving 16 bytes at a time when every pointer,
// stride and the row length allow it (the model's rows: 4096 f32 or 8192 bf16 bytes), else 4, else
// 1.
#include "kernels/cuda/gather_rows.cuh"
#include "kernels/cuda/launch.cuh"

namespace tandem::cuda {
namespace {

template <typename Unit>
__global__ void gather_rows_kernel(GatherRowsParams p) {
  wait_for_previous_kernel();
  const int64_t src_row = p.rows[blockIdx.x];
  const Unit* from =
      reinterpret_cast<const Unit*>(static_cast<const char*>(p.src) + src_row * p.src_stride);
  Unit* to =
      reinterpret_cast<Unit*>(static_cast<char*>(p.dst) + int64_t(blockIdx.x) * p.dst_stride);
  const int64_t units = p.row_bytes / int64_t(sizeof(Unit));
  for (int64_t i = threadIdx.x; i < units; i += blockDim.x) to[i] = from[i];
}

template <typename Unit>
cudaError_t launch(const GatherRowsParams& p, cudaStream_t stream) {
  const int64_t units = p.row_bytes / int64_t(sizeof(Unit));
  const int64_t want = (units + 31) / 32 * 32;
  const unsigned threads = unsigned(want < 256 ? want : 256);
  return launch_kernel(gather_rows_kernel<Unit>, unsigned(p.n), threads, 0, stream, p);
}

bool multiple_of(int64_t value, int64_t unit) { return value % unit == 0; }

}  // namespace

cudaError_t gather_rows(const GatherRowsParams& p, cudaStream_t stream) {
  if (p.n <= 0 || p.row_bytes == 0) return cudaSuccess;
  if (!p.src || !p.dst || !p.rows || p.row_bytes < 0 || p.src_stride < p.row_bytes ||
      p.dst_stride < p.row_bytes || p.n > INT32_MAX) {
    return cudaErrorInvalidValue;
  }
  const auto fits = [&](int64_t unit) {
    return multiple_of(int64_t(reinterpret_cast<uintptr_t>(p.src)), unit) &&
           multiple_of(int64_t(reinterpret_cast<uintptr_t>(p.dst)), unit) &&
           multiple_of(p.src_stride, unit) && multiple_of(p.dst_stride, unit) &&
           multiple_of(p.row_bytes, unit);
  };
  if (fits(16)) return launch<uint4>(p, stream);
  if (fits(4)) return launch<uint32_t>(p, stream);
  return launch<uint8_t>(p, stream);
}

}  // namespace tandem::cuda
