// RMSNorm as Hugging Face Llama computes it: x * rsqrt(mean(x^2) + eps) * weight, in f32.
#pragma once
#include <cstdint>

namespace tandem::cpu {

// out (n, dim) = x (n, dim) * rsqrt(mean(x_row^2) + eps) * weight (dim). out may alias x.
void rms_norm(const float* x, const float* weight, int64_t n, int64_t dim, float eps, float* out);

}  // namespace tandem::cpu
