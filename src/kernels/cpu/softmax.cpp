// softmax: three passes per row (max, exp + sum, scale); the sum is accumulated in double.
#include "kernels/cpu/softmax.h"

#include <cmath>
#include <limits>

namespace tandem::cpu {

void softmax(const float* x, int64_t rows, int64_t cols, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * cols;
    float* out = y + r * cols;
    float max = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < cols; ++c) max = in[c] > max ? in[c] : max;
    if (max == -std::numeric_limits<float>::infinity()) {
      for (int64_t c = 0; c < cols; ++c) out[c] = 0.0f;
      continue;
    }
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      out[c] = std::exp(in[c] - max);
      sum += out[c];
    }
    const float inv = float(1.0 / sum);
    for (int64_t c = 0; c < cols; ++c) out[c] *= inv;
  }
}

}  // namespace tandem::cpu
