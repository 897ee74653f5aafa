// rms_norm: the mean of squares is accumulated in double (cheap next to the matmuls, and it keeps
// long rows as accurate as the f32 cascade sum PyTorch uses), then applied in f32.
#include "kernels/cpu/rms_norm.h"

#include <cmath>

namespace tandem::cpu {

void rms_norm(const float* x, const float* weight, int64_t n, int64_t dim, float eps, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * dim;
    double sum_sq = 0.0;
    for (int64_t j = 0; j < dim; ++j) sum_sq += double(row[j]) * double(row[j]);
    const float mean_sq = float(sum_sq / double(dim));
    const float inv_rms = 1.0f / std::sqrt(mean_sq + eps);
    float* dst = out + i * dim;
    for (int64_t j = 0; j < dim; ++j) dst[j] = weight[j] * (row[j] * inv_rms);
  }
}

}  // namespace tandem::cpu
