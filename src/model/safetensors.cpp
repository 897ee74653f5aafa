#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tandem {

namespace {

// Headers larger than this are refused (the format's own reference limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32") *out = DType::kF32;
  else if (s == "F16") *out = DType::kF16;
  else if (s == "BF16") *out = DType::kBF16;
  else return false;
  return true;
}

// Validates one header entry and returns its TensorRef (data pointer not yet set).
TensorRef parse_entry(const std::string& file, const std::string& name, const nlohmann::json& e,
                      uint64_t data_size, uint64_t* begin) {
  TANDEM_CHECK(e.is_object(), "{}: tensor '{}': header entry is not an object", file, name);
  TensorRef t;
  t.name = name;
  t.file = file;
  auto dtype = e.find("dtype");
  TANDEM_CHECK(dtype != e.end() && dtype->is_string(), "{}: tensor '{}': missing dtype", file,
               name);
  TANDEM_CHECK(parse_dtype(dtype->get<std::string>(), &t.dtype),
               "{}: tensor '{}': unsupported dtype '{}' (F32, F16, BF16)", file, name,
               dtype->get<std::string>());
  auto shape = e.find("shape");
  TANDEM_CHECK(shape != e.end() && shape->is_array() && shape->size() <= 8,
               "{}: tensor '{}': missing or invalid shape", file, name);
  uint64_t numel = 1;
  for (const auto& d : *shape) {
    TANDEM_CHECK(d.is_number_unsigned(), "{}: tensor '{}': shape holds a non-integer {}", file,
                 name, d.dump());
    uint64_t dim = d.get<uint64_t>();
    TANDEM_CHECK(dim == 0 || numel <= std::numeric_limits<uint64_t>::max() / 4 / dim,
                 "{}: tensor '{}': shape overflows", file, name);
    numel *= dim;
    t.shape.push_back(int64_t(dim));
  }
  auto offsets = e.find("data_offsets");
  TANDEM_CHECK(offsets != e.end() && offsets->is_array() && offsets->size() == 2 &&
                   (*offsets)[0].is_number_unsigned() && (*offsets)[1].is_number_unsigned(),
               "{}: tensor '{}': missing or invalid data_offsets", file, name);
  uint64_t b = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
  TANDEM_CHECK(b <= end && end <= data_size,
               "{}: tensor '{}': data_offsets [{}, {}] lie outside the {} data bytes (truncated "
               "file?)", file, name, b, end, data_size);
  TANDEM_CHECK(end - b == numel * dtype_size(t.dtype),
               "{}: tensor '{}': {} bytes do not match shape and dtype ({} bytes expected)", file,
               name, end - b, numel * dtype_size(t.dtype));
  t.nbytes = size_t(end - b);
  *begin = b;
  return t;
}

}  // namespace

int64_t TensorRef::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : file_(path) {
  const std::string name = path.string();
  TANDEM_CHECK(file_.size() >= 8, "{}: truncated safetensors file ({} bytes)", name, file_.size());
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file_.data()[i];
  TANDEM_CHECK(header_len <= kMaxHeaderBytes && header_len <= file_.size() - 8,
               "{}: header length {} exceeds the file size {}", name, header_len, file_.size());
  const char* header = reinterpret_cast<const char*>(file_.data() + 8);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header, header + header_len);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e999
    fail("{}: invalid safetensors header JSON: {}", name, e.what());
  }
  TANDEM_CHECK(j.is_object(), "{}: safetensors header is not a JSON object", name);
  const uint8_t* data = file_.data() + 8 + header_len;
  uint64_t data_size = file_.size() - 8 - header_len;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (begin, end) for the overlap check
  for (const auto& [key, entry] : j.items()) {
    if (key == "__metadata__") continue;
    uint64_t begin = 0;
    TensorRef t = parse_entry(name, key, entry, data_size, &begin);
    t.data = data + begin;
    ranges.emplace_back(begin, begin + t.nbytes);
    tensors_.emplace(key, std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    TANDEM_CHECK(ranges[i].first >= ranges[i - 1].second,
                 "{}: tensors overlap in the data section (offset {})", name, ranges[i].first);
}

}  // namespace tandem
