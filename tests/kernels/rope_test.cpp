// RoPE: inverse-frequency tables (default, linear, llama3) against the transformers formulas in
// double, and apply_rope against a double rotation using transformers' f32 angle.
#include "kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "kernel_test_util.h"

namespace tandem {
namespace {

double default_inv_freq(int i, int head_dim, double theta) {
  return 1.0 / std::pow(theta, double(2 * i) / head_dim);
}

TEST(Rope, DefaultAndLinearInverseFrequencies) {
  for (int head_dim : {8, 16, 64, 128}) {
    for (double theta : {10000.0, 500000.0, 1000000.0}) {
      const auto inv = cpu::rope_default_inv_freq(head_dim, theta);
      ASSERT_EQ(inv.size(), size_t(head_dim / 2));
      auto lin = inv;
      cpu::rope_scale_linear(lin, 4.0);
      for (int i = 0; i < head_dim / 2; ++i) {
        const double want = default_inv_freq(i, head_dim, theta);
        EXPECT_NEAR(inv[size_t(i)], want, 1e-6 * want) << head_dim << " " << theta << " " << i;
        EXPECT_NEAR(lin[size_t(i)], want / 4.0, 1e-6 * want) << i;
      }
    }
  }
  EXPECT_THROW(cpu::rope_default_inv_freq(7, 10000.0), Error);
}

// transformers' _compute_llama3_parameters, evaluated in double.
double llama3_inv_freq(double f, const cpu::Llama3RopeScaling& s) {
  const double low_wavelen = s.original_max_position / s.low_freq_factor;
  const double high_wavelen = s.original_max_position / s.high_freq_factor;
  const double wavelen = 2 * std::numbers::pi / f;
  if (wavelen < high_wavelen) return f;
  if (wavelen > low_wavelen) return f / s.factor;
  const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
  return (1 - smooth) * f / s.factor + smooth * f;
}

TEST(Rope, Llama3ScalingCoversAllThreeBands) {
  const cpu::Llama3RopeScaling scaling{8.0, 1.0, 4.0, 8192};
  for (int head_dim : {16, 64, 128}) {
    auto inv = cpu::rope_default_inv_freq(head_dim, 500000.0);
    const auto base = inv;
    cpu::rope_scale_llama3(inv, scaling);
    int kept = 0, divided = 0, smoothed = 0;
    for (size_t i = 0; i < inv.size(); ++i) {
      const double want = llama3_inv_freq(base[i], scaling);
      EXPECT_NEAR(inv[i], want, 2e-6 * want) << head_dim << " " << i;
      const double wavelen = 2 * std::numbers::pi / base[i];
      kept += wavelen < 2048.0;
      divided += wavelen > 8192.0;
      smoothed += wavelen >= 2048.0 && wavelen <= 8192.0;
    }
    EXPECT_GT(kept, 0);
    EXPECT_GT(divided, 0);
    EXPECT_GT(smoothed, 0) << head_dim;
  }
}

TEST(Rope, RotatesHalvesLikeRotateHalf) {
  const std::vector<int32_t> positions = {0, 1, 2, 17, 255, 256, 4095, 100000};
  for (int head_dim : {8, 16, 64, 128}) {
    for (int num_heads : {1, 3}) {
      const auto inv = cpu::rope_default_inv_freq(head_dim, 10000.0);
      const int64_t n = int64_t(positions.size()), half = head_dim / 2;
      const auto x = test::random_floats(size_t(n * num_heads * head_dim), uint32_t(head_dim));
      std::vector<double> want(x.size());
      for (int64_t t = 0; t < n; ++t) {
        for (int h = 0; h < num_heads; ++h) {
          const size_t base = size_t((t * num_heads + h) * head_dim);
          for (int64_t i = 0; i < half; ++i) {
            const double angle = float(inv[size_t(i)] * float(positions[size_t(t)]));  // f32, as HF
            const double x1 = x[base + size_t(i)], x2 = x[base + size_t(i + half)];
            want[base + size_t(i)] = x1 * std::cos(angle) - x2 * std::sin(angle);
            want[base + size_t(i + half)] = x2 * std::cos(angle) + x1 * std::sin(angle);
          }
        }
      }
      auto got = x;
      cpu::apply_rope(got.data(), positions.data(), n, num_heads, head_dim, inv.data());
      test::expect_close(got, want, 1e-6, 1e-6, nullptr, "head_dim " + std::to_string(head_dim));
    }
  }
}

}  // namespace
}  // namespace tandem
