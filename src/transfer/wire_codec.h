// Little-endian byte writing and bounds-checked reading for the KV-transfer wire protocol, and
// the CRC-32C that guards each frame's payload. WireReader never reads past its span: every read
// checks the bytes left first and throws WireError naming the field it was reading.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace tandem {

// A malformed, truncated, oversized or unsupported message from a peer.
class WireError : public Error {
 public:
  using Error::Error;
};

// CRC-32C (Castagnoli), as used by iSCSI/ext4: detects every 1- to 3-bit error in a frame.
uint32_t crc32c(std::span<const uint8_t> bytes);

class WireWriter {
 public:
  void u8(uint8_t v) { bytes_.push_back(v); }
  void u16(uint16_t v) { put_le(v, 2); }
  void u32(uint32_t v) { put_le(v, 4); }
  void u64(uint64_t v) { put_le(v, 8); }
  void raw(std::span<const uint8_t> data) { bytes_.insert(bytes_.end(), data.begin(), data.end()); }
  // u32 length, then the bytes.
  void blob(std::span<const uint8_t> data);
  // u16 length, then the bytes (strings on the wire are at most 65535 bytes).
  void str(std::string_view s);

  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  void put_le(uint64_t v, int n);
  std::vector<uint8_t> bytes_;
};

class WireReader {
 public:
  // `context` names the message in error messages, e.g. "AllocRequest".
  WireReader(std::span<const uint8_t> data, std::string_view context)
      : data_(data), context_(context) {}

  uint8_t u8(std::string_view field) { return uint8_t(get_le(1, field)); }
  uint16_t u16(std::string_view field) { return uint16_t(get_le(2, field)); }
  uint32_t u32(std::string_view field) { return uint32_t(get_le(4, field)); }
  uint64_t u64(std::string_view field) { return get_le(8, field); }
  // Exactly n bytes.
  std::span<const uint8_t> raw(size_t n, std::string_view field);
  // A u32-length-prefixed blob of at most max_bytes.
  std::vector<uint8_t> blob(size_t max_bytes, std::string_view field);
  // A u16-length-prefixed string of min_bytes..max_bytes.
  std::string str(size_t min_bytes, size_t max_bytes, std::string_view field);
  // A u32 element count, checked against max_count and against the bytes left (each element
  // takes at least min_element_bytes), so a lying count can never cause a large allocation.
  size_t count(size_t max_count, size_t min_element_bytes, std::string_view field);

  size_t remaining() const { return data_.size() - pos_; }
  // Throws unless every byte was consumed.
  void expect_end() const;
  [[noreturn]] void fail_field(std::string_view field, std::string_view problem) const;

 private:
  uint64_t get_le(int n, std::string_view field);

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  std::string_view context_;
};

}  // namespace tandem
