// Helpers for the CUDA op tests: a fixture that skips where no GPU is present, bf16 rounding of
// host data (so the CPU reference sees exactly the values the GPU reads) and device round trips.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "backend/cuda_buffer.h"
#include "core/dtype.h"
#include "kernels/cuda/common.cuh"

namespace tandem::test {

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::cuda_device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// bf16 bit patterns of `x`; `x` itself is rounded in place to the values they hold.
inline std::vector<cuda::bf16> round_to_bf16(std::vector<float>& x) {
  std::vector<cuda::bf16> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    __nv_bfloat16_raw raw;
    raw.x = f32_to_bf16(x[i]);
    out[i] = raw;
    x[i] = bf16_to_f32(raw.x);
  }
  return out;
}

inline std::vector<float> bf16_to_floats(const std::vector<cuda::bf16>& x) {
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const __nv_bfloat16_raw raw = x[i];
    out[i] = bf16_to_f32(raw.x);
  }
  return out;
}

// The bit patterns of bf16 values, for tests that want the same bits, not just close values.
inline std::vector<uint16_t> bf16_bits(const std::vector<cuda::bf16>& x) {
  std::vector<uint16_t> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = __nv_bfloat16_raw(x[i]).x;
  return out;
}

inline std::vector<double> to_doubles(const std::vector<float>& x) {
  return std::vector<double>(x.begin(), x.end());
}

}  // namespace tandem::test
