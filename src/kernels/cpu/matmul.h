// The dense projection y = x @ W^T (+ bias): the op that dominates CPU inference time.
// W stays in its checkpoint dtype (f32, f16 or bf16) and is converted to f32 on the fly, a panel
// of rows at a time, so a block of input rows reuses each converted row; accumulation is f32.
// Work is split over output features on a ThreadPool; AVX2/FMA/F16C is used when the CPU has it.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace tandem {
class ThreadPool;
}

namespace tandem::cpu {

// A weight matrix as stored in a checkpoint (non-owning).
struct MatmulWeight {
  const void* data = nullptr;  // (out_features, in_features) row-major, elements of `dtype`
  DType dtype = DType::kF32;
  int64_t out_features = 0;
  int64_t in_features = 0;
  const float* bias = nullptr;  // (out_features) or null
};

// The instruction set matmul uses: kAuto picks AVX2+FMA+F16C when the CPU has them, else the
// portable path; kGeneric forces the portable path (tests check both against each other).
enum class MatmulIsa { kAuto, kGeneric };

// y (n, out_features) = x (n, in_features) @ W^T + bias. `pool` may be null (runs inline).
// y must not alias x.
void matmul(const float* x, int64_t n, const MatmulWeight& w, float* y, ThreadPool* pool,
            MatmulIsa isa = MatmulIsa::kAuto);

// The path kAuto takes on this CPU: "avx2" or "generic" (for logs and benchmarks).
const char* matmul_isa_name();

}  // namespace tandem::cpu
