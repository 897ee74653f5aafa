// The one place runtime sizes become template constants, so the set of compiled kernel variants
// stays small (CI compiles them on two cores): head_dim 64 and 128 get specialized kernels, every
// other even head_dim up to kMaxGenericHeadDim (the small golden models: 8, 16) one generic
// variant.
#pragma once
#include <type_traits>

namespace tandem::cuda {

constexpr int kMaxGenericHeadDim = 256;

// Calls fn(std::integral_constant<int, HD>{}) with HD = head_dim for 64 and 128, HD = 0 (size
// known only at run time) otherwise.
template <typename Fn>
auto dispatch_head_dim(int head_dim, Fn&& fn) {
  switch (head_dim) {
    case 64:
      return fn(std::integral_constant<int, 64>{});
    case 128:
      return fn(std::integral_constant<int, 128>{});
    default:
      return fn(std::integral_constant<int, 0>{});
  }
}

// Calls fn(std::integral_constant<int, HD>{}) for the head sizes the tensor-core prefill kernel
// supports; returns `unsupported` for any other.
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
