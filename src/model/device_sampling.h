// What a backend that samples where the logits are (CUDA) takes and returns per logits row, so
// that only token ids cross to the host: how to pick (DeviceDraw) and what was picked
// (DevicePicks). The engine's Sampler decides which rows may be picked this way.
#pragma once
#include <cstdint>
#include <vector>

namespace tandem {

// temperature 0: the argmax (the lowest id among equal maxima). Else the host sampler's stages on
// softmax(x / temperature) (top_k <= 0, top_p 1 and min_p 0 are off) and a draw with the uniform
// number u in [0, 1): the first kept id at which the running probability, in id order, exceeds u.
struct DeviceDraw {
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  double u = 0.0;
};

// Per logits row: the picked id, its log-softmax under the raw logits, and whether the row holds
// NaN or +inf or nothing above -inf (the host sampler rejects such a row).
struct DevicePicks {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::vector<int32_t> invalid;
};

}  // namespace tandem
