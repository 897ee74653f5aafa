// rope: the frequency tables mirror transformers' f32 tensor arithmetic operation by operation
// (Python scalars are rounded to f32 first; `a / t` is computed as reciprocal(t) * a), so the
// angles match the reference's bit for bit in the common case. cos/sin are per token, shared
// across heads.
#include "kernels/cpu/rope.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace tandem::cpu {

std::vector<float> rope_default_inv_freq(int head_dim, double theta) {
  TANDEM_CHECK(head_dim > 0 && head_dim % 2 == 0, "rope: head_dim {} must be positive and even",
               head_dim);
  std::vector<float> inv_freq(size_t(head_dim / 2));
  const float base = float(theta), dim = float(head_dim);
  for (int i = 0; i < head_dim / 2; ++i) {
    inv_freq[size_t(i)] = 1.0f / std::pow(base, float(2 * i) / dim);
  }
  return inv_freq;
}

void rope_scale_linear(std::vector<float>& inv_freq, double factor) {
  for (float& f : inv_freq) f /= float(factor);
}

void rope_scale_llama3(std::vector<float>& inv_freq, const Llama3RopeScaling& s) {
  const float factor = float(s.factor), low = float(s.low_freq_factor);
  const float old_len = float(s.original_max_position);
  const float low_freq_wavelen = float(double(s.original_max_position) / s.low_freq_factor);
  const float high_freq_wavelen = float(double(s.original_max_position) / s.high_freq_factor);
  const float two_pi = float(2.0 * std::numbers::pi);
  const float band = float(s.high_freq_factor - s.low_freq_factor);
  for (float& f : inv_freq) {
    const float wavelen = (1.0f / f) * two_pi;
    const float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    const float smooth = ((1.0f / wavelen) * old_len - low) / band;
    const float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    f = medium ? smoothed : scaled;
  }
}

void apply_rope(float* x, const int32_t* positions, int64_t n, int num_heads, int head_dim,
                const float* inv_freq) {
  const int half = head_dim / 2;
  std::vector<float> cos_t(static_cast<size_t>(half)),
      sin_t(static_cast<size_t>(half));  // (half) for one token
  for (int64_t t = 0; t < n; ++t) {
    const float pos = float(positions[t]);
    for (int i = 0; i < half; ++i) {
      const float angle = inv_freq[i] * pos;
      cos_t[size_t(i)] = std::cos(angle);
      sin_t[size_t(i)] = std::sin(angle);
    }
    for (int h = 0; h < num_heads; ++h) {
      float* head = x + (t * num_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float x1 = head[i], x2 = head[i + half];
        head[i] = x1 * cos_t[size_t(i)] - x2 * sin_t[size_t(i)];
        head[i + half] = x2 * cos_t[size_t(i)] + x1 * sin_t[size_t(i)];
      }
    }
  }
}

}  // namespace tandem::cpu
