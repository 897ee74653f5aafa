// embedding, rms_norm, silu_mul and softmax against double-precision references.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "kernel_test_util.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/silu_mul.h"
#include "kernels/cpu/softmax.h"

namespace tandem {
namespace {

TEST(Embedding, GathersRowsOfEveryDtypeExactly) {
  const int64_t vocab = 37, dim = 13;
  const std::vector<int32_t> ids = {0, 36, 5, 5, 17};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    const auto table = test::make_weight(dtype, test::random_floats(size_t(vocab * dim), 3));
    std::vector<float> out(ids.size() * size_t(dim));  // (n, dim)
    cpu::embedding(table.bytes.data(), dtype, vocab, dim, ids.data(), int64_t(ids.size()),
                   out.data());
    for (size_t i = 0; i < ids.size(); ++i)
      for (int64_t j = 0; j < dim; ++j)
        ASSERT_EQ(out[i * size_t(dim) + size_t(j)], table.values[size_t(ids[i] * dim + j)]);
  }
}

TEST(Embedding, RejectsIdsOutsideTheVocabulary) {
  const auto table = test::make_weight(DType::kF32, test::random_floats(4 * 2, 3));
  std::vector<float> out(2);
  for (int32_t bad : {-1, 4}) {
    EXPECT_THROW(cpu::embedding(table.bytes.data(), DType::kF32, 4, 2, &bad, 1, out.data()), Error);
  }
}

TEST(RmsNorm, MatchesDoubleReference) {
  for (int64_t dim : {1, 7, 64, 96, 1000}) {
    for (float eps : {1e-5f, 1e-6f}) {
      const int64_t n = 3;
      const auto x = test::random_floats(size_t(n * dim), uint32_t(dim), -3.0f, 3.0f);
      const auto w = test::random_floats(size_t(dim), uint32_t(dim) + 1, 0.5f, 1.5f);
      std::vector<double> want(x.size());
      for (int64_t i = 0; i < n; ++i) {
        double ss = 0;
        for (int64_t j = 0; j < dim; ++j)
          ss += double(x[size_t(i * dim + j)]) * x[size_t(i * dim + j)];
        const double inv = 1.0 / std::sqrt(ss / double(dim) + eps);
        for (int64_t j = 0; j < dim; ++j)
          want[size_t(i * dim + j)] = double(x[size_t(i * dim + j)]) * inv * w[size_t(j)];
      }
      std::vector<float> got = x;
      cpu::rms_norm(got.data(), w.data(), n, dim, eps, got.data());  // in place
      test::expect_close(got, want, 1e-6, 1e-6, nullptr, "dim " + std::to_string(dim));
    }
  }
}

TEST(RmsNorm, ZeroRowStaysFinite) {
  std::vector<float> x(8, 0.0f), w(8, 1.0f), out(8, -1.0f);
  cpu::rms_norm(x.data(), w.data(), 1, 8, 1e-6f, out.data());
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

TEST(SiluMul, MatchesDoubleReference) {
  auto gate = test::random_floats(1001, 5, -20.0f, 20.0f);
  gate.push_back(-200.0f);  // exp(200) overflows f32: the result must still be -0
  gate.push_back(200.0f);
  const auto up = test::random_floats(gate.size(), 6, -2.0f, 2.0f);
  std::vector<double> want(gate.size());
  for (size_t i = 0; i < gate.size(); ++i) {
    const double g = gate[i];
    want[i] = g / (1.0 + std::exp(-g)) * up[i];
  }
  std::vector<float> got(gate.size());
  cpu::silu_mul(gate.data(), up.data(), int64_t(gate.size()), got.data());
  test::expect_close(got, want, 1e-6, 1e-6);
}

TEST(Softmax, MatchesDoubleReferenceAndHandlesMaskedRows) {
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t cols : {1, 2, 17, 300}) {
    const int64_t rows = 4;
    auto x = test::random_floats(size_t(rows * cols), uint32_t(cols), -30.0f, 30.0f);
    x[0] = 1000.0f;                            // row 0: huge logit (no overflow)
    if (cols > 1) x[size_t(cols + 1)] = -inf;  // row 1: one masked entry
    for (int64_t c = 0; c < cols; ++c) x[size_t(2 * cols + c)] = -inf;  // row 2: all masked
    std::vector<double> want(x.size(), 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      if (r == 2) continue;
      double m = -inf, s = 0;
      for (int64_t c = 0; c < cols; ++c) m = std::max(m, double(x[size_t(r * cols + c)]));
      for (int64_t c = 0; c < cols; ++c) s += std::exp(double(x[size_t(r * cols + c)]) - m);
      for (int64_t c = 0; c < cols; ++c)
        want[size_t(r * cols + c)] = std::exp(double(x[size_t(r * cols + c)]) - m) / s;
    }
    std::vector<float> got(x.size());
    cpu::softmax(x.data(), rows, cols, got.data());
    test::expect_close(got, want, 1e-7, 1e-5, nullptr, "cols " + std::to_string(cols));
  }
}

}  // namespace
}  // namespace tandem
