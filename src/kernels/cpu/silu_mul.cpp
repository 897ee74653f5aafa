// silu_mul: x / (1 + exp(-x)) * up in f32 (exp overflows to inf for very negative x, giving the
// correct limit 0).
#include "kernels/cpu/silu_mul.h"

#include <cmath>

namespace tandem::cpu {

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace tandem::cpu
