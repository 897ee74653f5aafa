// SafetensorsWriter (streaming, pwrite-based) and write_safetensors (whole tensors in memory).
// See safetensors_writer.h for the file layout.
#include "model/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "core/error.h"
#include "model/safetensors.h"

namespace tandem {
namespace {

// The safetensors reference reader refuses headers larger than this.
constexpr uint64_t kMaxWrittenHeaderBytes = 100'000'000;

// Declaration indices in data order: largest element size first, then by name.
std::vector<size_t> data_order(const std::vector<TensorDecl>& tensors) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    size_t sa = dtype_size(tensors[a].dtype), sb = dtype_size(tensors[b].dtype);
    return sa != sb ? sa > sb : tensors[a].name < tensors[b].name;
  });
  return order;
}

void check_names(const std::vector<TensorDecl>& tensors) {
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    TANDEM_CHECK(!t.name.empty(), "empty tensor name");
    TANDEM_CHECK(t.name != "__metadata__", "'__metadata__' is not a tensor name");
    TANDEM_CHECK(seen.insert(t.name).second, "duplicate tensor '{}'", t.name);
  }
}

// Slots in declaration order, laid out contiguously in data order.
std::vector<TensorSlot> lay_out(const std::vector<TensorDecl>& tensors, uint64_t* data_size) {
  check_names(tensors);
  std::vector<TensorSlot> slots(tensors.size());
  uint64_t offset = 0;
  for (size_t i : data_order(tensors)) {
    uint64_t n = tensors[i].nbytes();
    TANDEM_CHECK(offset + n >= offset, "total size overflows");
    slots[i] = TensorSlot{tensors[i], offset, offset + n};
    offset += n;
  }
  *data_size = offset;
  return slots;
}

// The JSON header, padded with spaces so that 8 + its length is a multiple of 8.
std::string make_header(const std::vector<TensorSlot>& slots) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  for (const auto& s : slots) {
    header[s.decl.name] = {{"dtype", std::string(dtype_name(s.decl.dtype))},
                           {"shape", s.decl.shape},
                           {"data_offsets", {s.begin, s.end}}};
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("a tensor name is not valid UTF-8: {}", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  TANDEM_CHECK(text.size() <= kMaxWrittenHeaderBytes, "header of {} bytes is too large",
               text.size());
  return text;
}

void pwrite_all(int fd, const std::filesystem::path& path, const void* bytes, size_t size,
                uint64_t offset) {
  auto* p = static_cast<const uint8_t*>(bytes);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, off_t(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("{}: write failed: {}", path.string(), std::strerror(n < 0 ? errno : EIO));
    p += n;
    size -= size_t(n);
    offset += uint64_t(n);
  }
}

}  // namespace

uint64_t TensorDecl::nbytes() const {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    TANDEM_CHECK(d >= 0, "tensor '{}' has a negative dimension {}", name, d);
    TANDEM_CHECK(d == 0 || n <= UINT64_MAX / uint64_t(d), "tensor '{}' is too large", name);
    n *= uint64_t(d);
  }
  return n;
}

uint64_t safetensors_file_size(const std::vector<TensorDecl>& tensors) {
  uint64_t data_size = 0;
  std::vector<TensorSlot> slots = lay_out(tensors, &data_size);
  return 8 + make_header(slots).size() + data_size;
}

SafetensorsWriter::SafetensorsWriter(const std::filesystem::path& path,
                                     const std::vector<TensorDecl>& tensors)
    : path_(path) {
  std::string header;
  try {
    slots_ = lay_out(tensors, &data_size_);
    header = make_header(slots_);
  } catch (const Error& e) {
    fail("{}: {}", path.string(), e.what());
  }
  written_ = std::make_unique<std::atomic<uint64_t>[]>(slots_.size());
  data_start_ = 8 + header.size();

  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("{}: cannot create file: {}", path.string(), std::strerror(errno));
  try {
    uint8_t length[8];  // little-endian u64 header length
    for (int i = 0; i < 8; ++i) length[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
    pwrite_all(fd_, path_, length, 8, 0);
    pwrite_all(fd_, path_, header.data(), header.size(), 8);
    if (::ftruncate(fd_, off_t(file_size())) != 0) {
      fail("{}: cannot size file to {} bytes: {}", path.string(), file_size(),
           std::strerror(errno));
    }
  } catch (...) {
    ::close(fd_);
    std::filesystem::remove(path_);
    throw;
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
}

void SafetensorsWriter::write(size_t index, uint64_t offset, const void* bytes, size_t size) {
  TANDEM_CHECK(fd_ >= 0, "{}: write after finish()", path_.string());
  TANDEM_CHECK(index < slots_.size(), "{}: tensor index {} out of range", path_.string(), index);
  const TensorSlot& slot = slots_[index];
  uint64_t nbytes = slot.end - slot.begin;
  TANDEM_CHECK(offset <= nbytes && size <= nbytes - offset,
               "{}: write of {} bytes at {} is outside tensor '{}' ({} bytes)", path_.string(),
               size, offset, slot.decl.name, nbytes);
  pwrite_all(fd_, path_, bytes, size, data_start_ + slot.begin + offset);
  written_[index] += size;
}

void SafetensorsWriter::finish() {
  TANDEM_CHECK(fd_ >= 0, "{}: finish() called twice", path_.string());
  for (size_t i = 0; i < slots_.size(); ++i) {
    uint64_t expected = slots_[i].end - slots_[i].begin;
    TANDEM_CHECK(written_[i] == expected, "{}: tensor '{}' got {} of its {} bytes", path_.string(),
                 slots_[i].decl.name, written_[i].load(), expected);
  }
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("{}: close failed: {}", path_.string(), std::strerror(errno));
  finished_ = true;
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<TensorToWrite>& tensors) {
  std::vector<TensorDecl> decls;
  decls.reserve(tensors.size());
  for (const auto& t : tensors) decls.push_back(TensorDecl{t.name, t.dtype, t.shape});
  SafetensorsWriter writer(path, decls);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSlot& slot = writer.slots()[i];
    TANDEM_CHECK(tensors[i].bytes.size() == slot.end - slot.begin,
                 "{}: tensor '{}' has {} bytes, its shape and dtype need {}", path.string(),
                 tensors[i].name, tensors[i].bytes.size(), slot.end - slot.begin);
    writer.write(i, 0, tensors[i].bytes.data(), tensors[i].bytes.size());
  }
  writer.finish();
}

}  // namespace tandem
