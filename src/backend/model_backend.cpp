// load_model_backend: the CPU backend always; the CUDA backend only in CUDA builds. Also the
// default forward_sampled (backends without a device sampler).
#include "backend/model_backend.h"

#include "backend/cpu_backend.h"
#include "core/error.h"
#ifdef TANDEM_WITH_CUDA
#include "backend/cuda_model.h"
#endif

namespace tandem {

void ModelBackend::forward_sampled(const ForwardBatch&, std::span<const DeviceDraw>,
                                   std::span<const int32_t>, float*, DevicePicks&) {
  fail("forward_sampled: this model backend picks no tokens on a device");
}

std::unique_ptr<ModelBackend> load_model_backend(const std::filesystem::path& dir,
                                                 const BackendOptions& options) {
  if (options.device == BackendDevice::kCpu) return std::make_unique<CpuBackend>(dir, options.pool);
#ifdef TANDEM_WITH_CUDA
  return std::make_unique<CudaModel>(dir, CudaModelOptions{options.max_num_batched_tokens,
                                                           options.execution, options.cuda_device});
#else
  fail("--device cuda: this tandem was built without CUDA (configure with -DTANDEM_CUDA=ON)");
#endif
}

}  // namespace tandem
