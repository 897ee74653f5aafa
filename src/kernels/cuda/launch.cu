#include <cstdlib>
#include <cstring>

#include "kernels/cuda/launch.cuh"

namespace tandem::cuda {

bool programmatic_launch_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("TANDEM_CUDA_PDL");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return enabled;
}

}  // namespace tandem::cuda
