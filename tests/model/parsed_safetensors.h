// Test helper: an independent reading of a .safetensors file (raw bytes + nlohmann-json header)
// to check what the writers produce against the spec, without trusting the project's reader.
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "test_support.h"

namespace tandem::test {

struct ParsedSafetensors {
  std::string raw;             // the whole file
  uint64_t header_length = 0;  // the little-endian u64 at byte 0
  std::string header_text;     // raw[8, 8 + header_length)
  nlohmann::json header;

  // The data bytes of tensor `name` (data_offsets are relative to the end of the header).
  std::string bytes(const std::string& name) const {
    const auto& offsets = header.at(name).at("data_offsets");
    uint64_t begin = offsets[0], end = offsets[1];
    return raw.substr(8 + header_length + begin, end - begin);
  }

  // Tensor `name` converted to f32.
  std::vector<float> values(const std::string& name) const {
    std::string dtype = header.at(name).at("dtype");
    DType t = dtype == "F32" ? DType::kF32 : dtype == "F16" ? DType::kF16 : DType::kBF16;
    std::string b = bytes(name);
    std::vector<float> out(b.size() / dtype_size(t));
    convert_to_f32(t, b.data(), out.data(), out.size());
    return out;
  }
};

inline ParsedSafetensors parse_safetensors(const std::filesystem::path& path) {
  ParsedSafetensors p;
  p.raw = read_text_file(path);
  if (p.raw.size() < 8) throw std::runtime_error(path.string() + ": shorter than 8 bytes");
  for (int i = 7; i >= 0; --i) p.header_length = (p.header_length << 8) | uint8_t(p.raw[i]);
  if (p.header_length > p.raw.size() - 8) throw std::runtime_error(path.string() + ": bad length");
  p.header_text = p.raw.substr(8, p.header_length);
  p.header = nlohmann::json::parse(p.header_text);
  return p;
}

}  // namespace tandem::test
