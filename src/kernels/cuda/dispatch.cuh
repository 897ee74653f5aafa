// The one place runtime sizes become template constants, so the set of compiled kernel variants
// stays small (CI compiles them on two cores): head_dim 64 and 128 get tensor-core kernels, every
// other head_dim up to kMaxGenericHeadDim (the small golden models: 8, 16) the CUDA-core split-KV
// kernel, which reads it at run time.
#pragma once
#include <type_traits>

namespace tandem::cuda {

constexpr int kMaxGenericHeadDim = 256;

// Calls fn(std::integral_constant<int, HD>{}) for the head sizes the tensor-core kernels (prefill
// and split-KV decode) support; returns `unsupported` for any other.
template <typename Fn, typename R>
R dispatch_tensor_core_head_dim(int head_dim, R unsupported, Fn&& fn) {
  switch (head_dim) {
    case 64:
      return fn(std::integral_constant<int, 64>{});
    case 128:
      return fn(std::integral_constant<int, 128>{});
    default:
      return unsupported;
  }
}

}  // namespace tandem::cuda
