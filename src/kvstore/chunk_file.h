// ChunkFile: the disk tier's file format, one KV chunk per file. A file is a fixed 96-byte
// header followed by the chunk's bytes (KvChunkLayout order):
//   magic "TKVCHUNK" | u32 version | u32 header bytes | key (16) | layout fingerprint (16) |
//   u32 dtype | u32 tokens | u64 payload bytes | payload SHA-256[0:16] | 8 reserved |
//   u64 header checksum (SHA-256[0:8] of the 88 bytes before it), all little-endian.
// Files are written under a temporary name and renamed, so a reader sees a whole file or none;
// anything torn, truncated or altered afterwards fails a check and is never loaded.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kv/block_hash.h"
#include "kvstore/stored_chunk.h"

namespace tandem {

inline constexpr uint32_t kChunkFileVersion = 1;
inline constexpr size_t kChunkFileHeaderBytes = 96;
inline constexpr std::string_view kChunkFileSuffix = ".chunk";

struct ChunkFileHeader {
  BlockHash key;
  std::array<uint8_t, 16> layout{};  // LayoutFingerprint of the bytes
  DType dtype = DType::kF32;
  uint32_t num_tokens = 0;
  uint64_t payload_bytes = 0;
  std::array<uint8_t, 16> payload_checksum{};
};

// "<key hex>.chunk": the file name a chunk is stored under.
std::string chunk_file_name(const BlockHash& key);

// Writes header + payload to `path` through `path` + ".tmp" and a rename; throws tandem::Error
// naming the file when a write fails (the temporary file is removed).
void write_chunk_file(const std::filesystem::path& path, const BlockHash& key,
                      const std::array<uint8_t, 16>& layout, uint32_t num_tokens,
                      std::span<const uint8_t> payload);

// The header of `path` if it is a well-formed chunk file header (magic, version, checksum) and
// the file is exactly header + payload bytes long; else nullopt and `why` says what is wrong.
std::optional<ChunkFileHeader> read_chunk_file_header(const std::filesystem::path& path,
                                                      std::string* why);

// The chunk in `path` if the whole file checks out (header, length, payload checksum) and it
// holds `key` in `layout`; else nullopt and `why` says what is wrong.
std::optional<StoredChunk> read_chunk_file(const std::filesystem::path& path, const BlockHash& key,
                                           const std::array<uint8_t, 16>& layout, std::string* why);

}  // namespace tandem
