// Helpers for the CPU kernel tests: seeded random buffers, weights in any dtype, and the
// tolerance check every kernel test uses against its naive double-precision reference.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace tandem::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A weight matrix stored in `dtype` (raw bytes) plus its exact f32 values.
struct TestWeight {
  DType dtype = DType::kF32;
  std::vector<uint8_t> bytes;  // (numel * dtype_size)
  std::vector<float> values;   // (numel) what the stored elements are worth
};

inline TestWeight make_weight(DType dtype, const std::vector<float>& source) {
  TestWeight w;
  w.dtype = dtype;
  w.bytes.resize(source.size() * dtype_size(dtype));
  w.values.resize(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(w.bytes.data() + 4 * i, &source[i], 4);
      w.values[i] = source[i];
      continue;
    }
    const uint16_t h = dtype == DType::kF16 ? f32_to_f16(source[i]) : f32_to_bf16(source[i]);
    std::memcpy(w.bytes.data() + 2 * i, &h, 2);
    w.values[i] = dtype == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
  return w;
}

// Checks |got - want| <= atol + rtol * scale[i] for each element; reports the first few misses.
inline void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                         double atol, double rtol, const std::vector<double>* scale = nullptr,
                         const std::string& what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  int misses = 0;
  for (size_t i = 0; i < got.size() && misses < 5; ++i) {
    const double s = scale ? (*scale)[i] : std::abs(want[i]);
    const double tol = atol + rtol * s;
    if (!(std::abs(double(got[i]) - want[i]) <= tol)) {
      ADD_FAILURE() << what << " element " << i << ": got " << got[i] << ", want " << want[i]
                    << " (tolerance " << tol << ")";
      ++misses;
    }
  }
}

}  // namespace tandem::test
