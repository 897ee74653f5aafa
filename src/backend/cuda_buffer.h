// Owning GPU memory (RAII over cudaMalloc/cudaFree) and the CUDA error check the backend uses:
// every CUDA or cuBLAS status that is not success becomes a tandem::Error naming what failed.
// Header-only, included only where TANDEM_WITH_CUDA is defined.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "core/error.h"

namespace tandem::cuda {

inline void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA: {} failed: {}", what, cudaGetErrorString(e));
}
inline void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS: {} failed: {}", what, cublasGetStatusString(s));
}

// Whether a usable CUDA device is present (false without a driver or a GPU).
inline bool cuda_device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

// `count` elements of T in device memory; movable, not copyable.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count == 0) return;
    const cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T));
    if (e != cudaSuccess) {
      data_ = nullptr;
      fail("CUDA: cannot allocate {} bytes of device memory: {}", count * sizeof(T),
           cudaGetErrorString(e));
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }

  // Synchronous copies of the first n elements (n <= size()).
  void upload(const T* src, size_t n) {
    TANDEM_CHECK(n <= count_, "DeviceBuffer: upload of {} elements into {}", n, count_);
    if (n) check_cuda(cudaMemcpy(data_, src, n * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  void upload(const std::vector<T>& v) { upload(v.data(), v.size()); }
  std::vector<T> download(size_t n) const {
    TANDEM_CHECK(n <= count_, "DeviceBuffer: download of {} elements from {}", n, count_);
    std::vector<T> out(n);
    if (n)
      check_cuda(cudaMemcpy(out.data(), data_, n * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return out;
  }
  std::vector<T> download() const { return download(count_); }

 private:
  void release() {
    if (data_) cudaFree(data_);
    data_ = nullptr;
  }
  T* data_ = nullptr;
  size_t count_ = 0;
};

// A host vector copied into a new device buffer.
template <typename T>
DeviceBuffer<T> to_device(const std::vector<T>& host) {
  DeviceBuffer<T> d(host.size());
  d.upload(host);
  return d;
}

}  // namespace tandem::cuda
