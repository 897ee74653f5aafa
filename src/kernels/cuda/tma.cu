// The host side of tma.cuh: cuTensorMapEncodeTiled, a driver function, reached through the
// runtime's entry-point query so that nothing links libcuda.
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include "kernels/cuda/tma.cuh"

namespace tandem::cuda::tma {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_function() {
  static const PFN_cuTensorMapEncodeTiled_v12000 function = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      return PFN_cuTensorMapEncodeTiled_v12000(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return function;
}

// A bf16 map of `rank` dimensions over `base` (rows `row_stride` elements apart), read in boxes
// 64 columns (128 bytes) wide into the 128-byte swizzle, after the limits
// cuTensorMapEncodeTiled documents: 16-byte aligned base and stride, box sides of at most 256.
cudaError_t encode_bf16(CUtensorMap* map, const void* base, uint64_t rows, uint64_t cols,
                        uint64_t row_stride, uint32_t rank, const cuuint64_t* dims,
                        const cuuint64_t* strides, const cuuint32_t* box) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = encode_function();
  if (encode == nullptr) return cudaErrorNotSupported;
  if (reinterpret_cast<uintptr_t>(base) % 16 != 0 || (row_stride * 2) % 16 != 0 || rows == 0 ||
      cols < 64 || row_stride < cols) {
    return cudaErrorInvalidValue;
  }
  for (uint32_t d = 0; d < rank; ++d) {
    if (box[d] == 0 || box[d] > 256) return cudaErrorInvalidValue;
  }
  const cuuint32_t element_strides[3] = {1, 1, 1};
  const CUresult r =
      encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, rank, const_cast<void*>(base), dims, strides,
             box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

}  // namespace

cudaError_t encode_bf16_rows(CUtensorMap* map, const void* base, uint64_t rows, uint64_t cols,
                             uint64_t row_stride, uint32_t box_rows) {
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {row_stride * 2};  // bytes between rows
  const cuuint32_t box[2] = {64, box_rows};
  return encode_bf16(map, base, rows, cols, row_stride, 2, dims, strides, box);
}

cudaError_t encode_bf16_row_blocks(CUtensorMap* map, const void* base, uint64_t rows,
                                   uint64_t cols, uint64_t row_stride, uint32_t box_rows,
                                   uint32_t box_blocks) {
  if (cols % 64 != 0) return cudaErrorInvalidValue;
  const cuuint64_t dims[3] = {64, rows, cols / 64};
  const cuuint64_t strides[2] = {row_stride * 2, 128};  // bytes between rows, between blocks
  const cuuint32_t box[3] = {64, box_rows, box_blocks};
  return encode_bf16(map, base, rows, cols, row_stride, 3, dims, strides, box);
}

}  // namespace tandem::cuda::tma
