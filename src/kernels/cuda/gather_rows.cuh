// Row gather on the GPU: dst row i = src row rows[i], for any element type (rows are bytes). The
// last layer of a prefill uses it to carry on with only the rows whose logits are wanted (their
// queries and residual stream); the host reference is a memcpy per row.
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

struct GatherRowsParams {
  const void* src = nullptr;      // row r at src + r * src_stride bytes
  int64_t src_stride = 0;         // bytes
  void* dst = nullptr;            // row i at dst + i * dst_stride bytes; must not overlap src
  int64_t dst_stride = 0;         // bytes
  int64_t row_bytes = 0;          // bytes copied per row (<= both strides)
  const int32_t* rows = nullptr;  // (n) source row of each output row
  int64_t n = 0;
};

cudaError_t gather_rows(const GatherRowsParams& p, cudaStream_t stream);

}  // namespace tandem::cuda
