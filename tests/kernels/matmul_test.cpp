// matmul against a double-precision reference over a sweep of shapes, weight dtypes, bias, thread
// pools and both code paths; plus exact conversion of every finite f16/bf16 bit pattern.
#include "kernels/cpu/matmul.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "kernel_test_util.h"

namespace tandem {
namespace {

using cpu::MatmulIsa;
using cpu::MatmulWeight;

struct MatmulCase {
  int64_t n, in, out;
};

void check_matmul(const MatmulCase& c, DType dtype, bool with_bias, ThreadPool* pool, MatmulIsa isa,
                  uint32_t seed) {
  const std::string what = fmt::format("n={} in={} out={} dtype={} bias={} pool={} isa={}", c.n,
                                       c.in, c.out, dtype_name(dtype), with_bias, pool != nullptr,
                                       isa == MatmulIsa::kAuto ? "auto" : "generic");
  const auto x = test::random_floats(size_t(c.n * c.in), seed);  // (n, in)
  const auto w = test::make_weight(dtype, test::random_floats(size_t(c.out * c.in), seed + 1));
  const auto bias = test::random_floats(size_t(c.out), seed + 2);     // (out)
  std::vector<double> want(size_t(c.n * c.out)), scale(want.size());  // (n, out)
  for (int64_t i = 0; i < c.n; ++i) {
    for (int64_t o = 0; o < c.out; ++o) {
      double s = with_bias ? bias[size_t(o)] : 0.0, a = std::abs(s);
      for (int64_t k = 0; k < c.in; ++k) {
        const double p = double(x[size_t(i * c.in + k)]) * w.values[size_t(o * c.in + k)];
        s += p;
        a += std::abs(p);
      }
      want[size_t(i * c.out + o)] = s;
      scale[size_t(i * c.out + o)] = a;
    }
  }
  std::vector<float> got(want.size(), -7.0f);
  MatmulWeight mw{w.bytes.data(), dtype, c.out, c.in, with_bias ? bias.data() : nullptr};
  cpu::matmul(x.data(), c.n, mw, got.data(), pool, isa);
  test::expect_close(got, want, 1e-6, 2e-6, &scale, what);
}

TEST(Matmul, MatchesDoubleReferenceOverShapeSweep) {
  ThreadPool pool(3);
  const MatmulCase cases[] = {{1, 1, 1},      {1, 7, 3},     {1, 8, 4},   {2, 9, 5},
                              {3, 16, 17},    {4, 63, 12},   {5, 64, 64}, {1, 172, 64},
                              {7, 172, 65},   {64, 64, 172}, {67, 33, 9}, {130, 96, 23},
                              {1, 256, 1000}, {70, 256, 101}};
  uint32_t seed = 1;
  for (const auto& c : cases) {
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (MatmulIsa isa : {MatmulIsa::kAuto, MatmulIsa::kGeneric}) {
        check_matmul(c, dtype, /*with_bias=*/seed % 2 == 0, &pool, isa, seed);
        check_matmul(c, dtype, /*with_bias=*/seed % 2 == 1, nullptr, isa, seed + 100);
        ++seed;
      }
    }
  }
}

// x = identity picks out the weights themselves: the conversion must be exact on both paths.
void check_exact_conversion(DType dtype, MatmulIsa isa) {
  constexpr int64_t kIn = 8;
  std::vector<uint16_t> bits;  // (out, kIn) every finite 16-bit pattern, zero-padded
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = dtype == DType::kF16 ? f16_to_f32(uint16_t(b)) : bf16_to_f32(uint16_t(b));
    if (std::isfinite(f)) bits.push_back(uint16_t(b));
  }
  bits.resize((bits.size() + kIn - 1) / kIn * kIn, 0);
  const int64_t out = int64_t(bits.size()) / kIn;
  std::vector<float> x(kIn * kIn, 0.0f);  // (kIn, kIn) identity
  for (int64_t i = 0; i < kIn; ++i) x[size_t(i * kIn + i)] = 1.0f;
  std::vector<float> y(size_t(kIn * out));  // (kIn, out)
  ThreadPool pool(2);
  cpu::matmul(x.data(), kIn, MatmulWeight{bits.data(), dtype, out, kIn, nullptr}, y.data(), &pool,
              isa);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t k = 0; k < kIn; ++k) {
      const uint16_t b = bits[size_t(r * kIn + k)];
      const float want = dtype == DType::kF16 ? f16_to_f32(b) : bf16_to_f32(b);
      ASSERT_EQ(y[size_t(k * out + r)], want) << dtype_name(dtype) << " bits " << b;
    }
  }
}

TEST(Matmul, ConvertsEveryFiniteHalfPatternExactly) {
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    check_exact_conversion(dtype, MatmulIsa::kAuto);
    check_exact_conversion(dtype, MatmulIsa::kGeneric);
  }
}

TEST(Matmul, ReportsItsCodePath) {
  const std::string isa = cpu::matmul_isa_name();
  EXPECT_TRUE(isa == "avx2" || isa == "generic") << isa;
}

}  // namespace
}  // namespace tandem
