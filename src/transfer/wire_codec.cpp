// WireWriter / WireReader and a table-driven CRC-32C.
#include "transfer/wire_codec.h"

#include <array>

namespace tandem {
namespace {

constexpr uint32_t kCrc32cPolynomial = 0x82F63B78;  // reflected Castagnoli

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kCrc32cPolynomial : 0);
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

}  // namespace

uint32_t crc32c(std::span<const uint8_t> bytes) {
  uint32_t crc = 0xFFFFFFFF;
  for (uint8_t b : bytes) crc = (crc >> 8) ^ kCrcTable[(crc ^ b) & 0xFF];
  return crc ^ 0xFFFFFFFF;
}

void WireWriter::put_le(uint64_t v, int n) {
  for (int i = 0; i < n; ++i) bytes_.push_back(uint8_t(v >> (8 * i)));
}

void WireWriter::blob(std::span<const uint8_t> data) {
  TANDEM_CHECK(data.size() <= UINT32_MAX, "wire: a blob of {} bytes is too large", data.size());
  u32(uint32_t(data.size()));
  raw(data);
}

void WireWriter::str(std::string_view s) {
  TANDEM_CHECK(s.size() <= UINT16_MAX, "wire: a string of {} bytes is too long", s.size());
  u16(uint16_t(s.size()));
  raw({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

void WireReader::fail_field(std::string_view field, std::string_view problem) const {
  throw WireError(fmt::format("wire protocol: {}.{}: {}", context_, field, problem));
}

uint64_t WireReader::get_le(int n, std::string_view field) {
  if (remaining() < size_t(n)) {
    fail_field(field, fmt::format("truncated ({} bytes needed, {} left)", n, remaining()));
  }
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(data_[pos_ + i]) << (8 * i);
  pos_ += n;
  return v;
}

std::span<const uint8_t> WireReader::raw(size_t n, std::string_view field) {
  if (remaining() < n) {
    fail_field(field, fmt::format("truncated ({} bytes needed, {} left)", n, remaining()));
  }
  std::span<const uint8_t> out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

std::vector<uint8_t> WireReader::blob(size_t max_bytes, std::string_view field) {
  uint32_t n = u32(field);
  if (n > max_bytes)
    fail_field(field, fmt::format("{} bytes exceed the limit of {}", n, max_bytes));
  std::span<const uint8_t> bytes = raw(n, field);
  return {bytes.begin(), bytes.end()};
}

std::string WireReader::str(size_t min_bytes, size_t max_bytes, std::string_view field) {
  uint16_t n = u16(field);
  if (n < min_bytes || n > max_bytes) {
    fail_field(field, fmt::format("length {} is outside {}..{}", n, min_bytes, max_bytes));
  }
  std::span<const uint8_t> bytes = raw(n, field);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

size_t WireReader::count(size_t max_count, size_t min_element_bytes, std::string_view field) {
  uint32_t n = u32(field);
  if (n > max_count)
    fail_field(field, fmt::format("count {} exceeds the limit of {}", n, max_count));
  if (size_t(n) * min_element_bytes > remaining()) {
    fail_field(field, fmt::format("count {} needs at least {} bytes, {} left", n,
                                  size_t(n) * min_element_bytes, remaining()));
  }
  return n;
}

void WireReader::expect_end() const {
  if (remaining() != 0) {
    throw WireError(
        fmt::format("wire protocol: {}: {} unexpected trailing bytes", context_, remaining()));
  }
}

}  // namespace tandem
