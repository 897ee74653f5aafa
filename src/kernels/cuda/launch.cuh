// Kernel launch with programmatic dependent launch (Hopper, sm_90) outside CUDA graphs: the driver
// may schedule a kernel's blocks while the kernel before it in the stream is still finishing, so
// the launch gap between the many small kernels of an eager decode step (norms, RoPE, attention,
// merge, SiLU) overlaps the previous kernel's tail: an eager Llama-3.1-8B decode step at batch 1
// and 7500 keys took 4.92-4.93 ms instead of 5.20-5.27 on an H200, about what its CUDA graph takes
// (4.89-4.91).
// Inside a graph capture the launch stays plain (launch_kernel): there it gained nothing for
// kernels with nothing to do before their wait (4.96-4.98 ms against 4.93-4.95), and triggering
// every next kernel early cost 0.2 ms (its waiting blocks sat on SMs). The exception is
// few_rows_gemm (launch_kernel_early), whose weight loads need no wait: started under the kernel
// before it, inside the graphs too, it took that step from 4.87-4.91 to 4.63-4.67 ms.
// A kernel launched this way calls wait_for_previous_kernel() before touching global memory; the
// wait returns once every earlier kernel in the stream has finished and its writes are visible,
// so reads and writes keep their order. TANDEM_CUDA_PDL=0 in the environment turns it off.
#pragma once
#include <cuda_runtime.h>

namespace tandem::cuda {

// Whether the environment sets the switch `name` (a TANDEM_* variable) to 0, which turns a
// kernel path off; the engine refuses values other than 0 and 1 at startup.
bool switched_off_in_env(const char* name);

// False when TANDEM_CUDA_PDL=0 was set when first asked; read once per process.
bool programmatic_launch_enabled();

#ifdef __CUDACC__
// First statement of every kernel launched by launch_kernel (a no-op after a plain launch).
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel in the stream start before this one ends, if it was launched with
// launch_kernel_early: called at the start of the kernels a few_rows_gemm follows (the norms, the
// split-KV merge, few_rows_gemm itself), whose blocks are all resident at once, so the GEMM's
// blocks can start streaming weights (they depend on nothing) while they run.
__device__ __forceinline__ void let_next_kernel_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic dependent launch unless it is
// off (TANDEM_CUDA_PDL=0) or the stream is being captured and !in_graphs.
template <typename... Params, typename... Args>
cudaError_t launch_kernel_overlapping(bool in_graphs, void (*kernel)(Params...), dim3 grid,
                                      dim3 block, size_t smem, cudaStream_t stream, Args... args) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (const cudaError_t e = cudaStreamIsCapturing(stream, &capture); e != cudaSuccess) return e;
  cudaLaunchAttribute overlap{};
  overlap.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  overlap.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &overlap;
  config.numAttrs =
      programmatic_launch_enabled() && (in_graphs || capture == cudaStreamCaptureStatusNone) ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, args...);
}

// kernel<<<grid, block, smem, stream>>>(args...), allowed to overlap the previous kernel's tail
// unless the stream is being captured into a graph. Returns the launch's error.
template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                          cudaStream_t stream, Args... args) {
  return launch_kernel_overlapping(false, kernel, grid, block, smem, stream, args...);
}

// The same, overlapping the previous kernel inside a graph capture too: for a kernel with work
// to do before its wait_for_previous_kernel() (few_rows_gemm's weight loads), whose predecessor
// calls let_next_kernel_start().
template <typename... Params, typename... Args>
cudaError_t launch_kernel_early(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                                cudaStream_t stream, Args... args) {
  return launch_kernel_overlapping(true, kernel, grid, block, smem, stream, args...);
}
#endif

}  // namespace tandem::cuda
