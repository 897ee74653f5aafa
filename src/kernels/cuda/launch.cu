#include <cstdlib>
#include <cstring>

#include "kernels/cuda/launch.cuh"

namespace tandem::cuda {

bool switched_off_in_env(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "0") == 0;
}

bool programmatic_launch_enabled() {
  static const bool enabled = !switched_off_in_env("TANDEM_CUDA_PDL");
  return enabled;
}

}  // namespace tandem::cuda
