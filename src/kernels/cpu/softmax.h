// Numerically stable softmax over the last axis (subtract the row max, exponentiate, normalize).
#pragma once
#include <cstdint>

namespace tandem::cpu {

// y (rows, cols) = softmax(x (rows, cols)) row by row, in f32. y may alias x. A row of all -inf
// becomes all zeros rather than NaN.
void softmax(const float* x, int64_t rows, int64_t cols, float* y);

}  // namespace tandem::cpu
