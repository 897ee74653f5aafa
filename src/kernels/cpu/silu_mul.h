// SwiGLU activation of the Llama MLP: silu(gate) * up, elementwise.
#pragma once
#include <cstdint>

namespace tandem::cpu {

// out (n) = gate (n) * sigmoid(gate) * up (n). out may alias gate or up.
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

}  // namespace tandem::cpu
