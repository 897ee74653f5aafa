// Streaming .safetensors writer: declare every tensor (name, dtype, shape) up front, then fill
// each tensor's bytes in chunks, from any number of threads, straight into the file (pwrite).
// Multi-gigabyte checkpoints are written without holding them in memory. The layout follows the
// safetensors spec and its reference writer: an 8-byte little-endian header length, a JSON header
// padded with spaces to a multiple of 8 bytes, then the tensors' data with contiguous offsets.
#pragma once
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace tandem {

struct TensorDecl {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;

  // numel * dtype_size; throws tandem::Error for negative or overflowing dimensions.
  [[nodiscard]] uint64_t nbytes() const;
};

// Where one tensor's data lives, relative to the start of the data section.
struct TensorSlot {
  TensorDecl decl;
  uint64_t begin = 0;  // data_offsets[0]
  uint64_t end = 0;    // data_offsets[1]
};

// Total size of a .safetensors file holding `tensors` (header included).
[[nodiscard]] uint64_t safetensors_file_size(const std::vector<TensorDecl>& tensors);

class SafetensorsWriter {
 public:
  // Validates the declarations (unique non-empty names, valid shapes), creates or truncates
  // `path`, writes the header and sizes the file. Data is ordered as the reference writer does:
  // by element size (largest first, so every tensor is aligned), then by name.
  SafetensorsWriter(const std::filesystem::path& path, const std::vector<TensorDecl>& tensors);
  // Removes the file unless finish() succeeded: a half-written checkpoint must not survive.
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Slots in declaration order (index i = the i-th declared tensor).
  [[nodiscard]] const std::vector<TensorSlot>& slots() const { return slots_; }
  [[nodiscard]] uint64_t file_size() const { return data_start_ + data_size_; }

  // Writes `size` bytes at byte `offset` of tensor `index`. Thread-safe; ranges written by
  // different calls must not overlap. Throws tandem::Error for an out-of-range write or an I/O
  // error.
  void write(size_t index, uint64_t offset, const void* bytes, size_t size);
  // Checks that every tensor's bytes were written exactly once and closes the file.
  void finish();

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool finished_ = false;
  std::vector<TensorSlot> slots_;
  std::unique_ptr<std::atomic<uint64_t>[]> written_;  // [num tensors] bytes written so far
  uint64_t data_start_ = 0;                           // 8 + padded header length
  uint64_t data_size_ = 0;
};

}  // namespace tandem
