// A memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data.
// Every field is bounds-checked: this parser faces untrusted files.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace tandem {

// A tensor inside a mapped file; `data` stays valid while the owning file lives.
struct TensorRef {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // the file it lives in, for error messages

  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates the file; throws tandem::Error "<path>: ..." (naming the tensor when
  // one is at fault) for a truncated file, a lying header, overlapping or out-of-range
  // offsets, unknown dtypes or a shape that does not match the byte count.
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::map<std::string, TensorRef>& tensors() const { return tensors_; }
  const std::filesystem::path& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::map<std::string, TensorRef> tensors_;
};

// Writes tensors to a .safetensors file (used by make-model and tests).
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // numel * dtype_size bytes
};
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors);

}  // namespace tandem
