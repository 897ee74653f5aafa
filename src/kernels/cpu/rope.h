// Rotary position embedding in the Hugging Face convention (rotate_half: element i of a head pairs
// with element i + head_dim/2), and the inverse frequencies of transformers' rope types, computed
// in f32 step by step as transformers does (default, linear, llama3).
#pragma once
#include <cstdint>
#include <vector>

namespace tandem::cpu {

// inv_freq (head_dim / 2): 1 / theta^(2i / head_dim) (transformers' default rope).
std::vector<float> rope_default_inv_freq(int head_dim, double theta);

// Linear scaling ("linear" rope_type): inv_freq / factor.
void rope_scale_linear(std::vector<float>& inv_freq, double factor);

// Llama 3 scaling ("llama3" rope_type), as transformers' _compute_llama3_parameters: long
// wavelengths divided by `factor`, short ones kept, the band between smoothly interpolated.
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position = 8192;
};
void rope_scale_llama3(std::vector<float>& inv_freq, const Llama3RopeScaling& scaling);

// Rotates x (n, num_heads, head_dim) in place: for token t at positions[t] and i < head_dim/2,
// angle = inv_freq[i] * position (f32), (x_i, x_{i+half}) -> (x_i cos - x_{i+half} sin,
// x_{i+half} cos + x_i sin). head_dim must be even; inv_freq has head_dim / 2 entries.
void apply_rope(float* x, const int32_t* positions, int64_t n, int num_heads, int head_dim,
                const float* inv_freq);

}  // namespace tandem::cpu
