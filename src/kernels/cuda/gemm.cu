// gemm: row-major y (m, n) = x (m, k) W^T is column-major y^T (n, m) = W (k, n)^T x^T (k, m), so
// cuBLAS gets op(A) = W transposed and op(B) = x as stored; compute type f32.
#include <climits>

#include "kernels/cuda/gemm.cuh"

namespace tandem::cuda {

cublasStatus_t gemm(cublasHandle_t handle, const GemmParams& p) {
  if (p.m == 0) return CUBLAS_STATUS_SUCCESS;
  if (p.m < 0 || p.n <= 0 || p.k <= 0 || p.m > INT_MAX || p.n > INT_MAX || p.k > INT_MAX || !p.x ||
      !p.w || !p.y) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const float alpha = 1.0f;
  const cudaDataType_t out_type = p.out == GemmOut::kF32 ? CUDA_R_32F : CUDA_R_16BF;
  return cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(p.n), int(p.m), int(p.k), &alpha, p.w,
                      CUDA_R_16BF, int(p.k), p.x, CUDA_R_16BF, int(p.k), &p.beta, p.y, out_type,
                      int(p.n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

}  // namespace tandem::cuda
