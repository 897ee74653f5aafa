// Chunk files: header encoding, checksums, atomic writes and checked reads.
#include "kvstore/chunk_file.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace tandem {
namespace {

constexpr char kChunkFileMagic[8] = {'T', 'K', 'V', 'C', 'H', 'U', 'N', 'K'};
constexpr size_t kHeaderChecksumAt = kChunkFileHeaderBytes - 8;

// SHA-256 of `bytes` (the first 32 bytes of the digest).
std::array<uint8_t, 32> sha256(std::span<const uint8_t> bytes) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::array<uint8_t, 32> digest{};
  unsigned int len = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) == 1 &&
            EVP_DigestFinal_ex(ctx.get(), digest.data(), &len) == 1;
  TANDEM_CHECK(ok && len == 32, "chunk file: OpenSSL SHA-256 failed");
  return digest;
}

std::array<uint8_t, 16> payload_checksum(std::span<const uint8_t> payload) {
  std::array<uint8_t, 32> d = sha256(payload);
  std::array<uint8_t, 16> out{};
  std::memcpy(out.data(), d.data(), out.size());
  return out;
}

void put_u32(uint8_t* at, uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = uint8_t(v >> (8 * i));
}
void put_u64(uint8_t* at, uint64_t v) {
  for (int i = 0; i < 8; ++i) at[i] = uint8_t(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(at[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const uint8_t* at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(at[i]) << (8 * i);
  return v;
}

uint64_t header_checksum(const uint8_t* header) {
  return get_u64(sha256(std::span(header, kHeaderChecksumAt)).data());
}

std::array<uint8_t, kChunkFileHeaderBytes> encode(const ChunkFileHeader& h) {
  std::array<uint8_t, kChunkFileHeaderBytes> out{};
  uint8_t* p = out.data();
  std::memcpy(p, kChunkFileMagic, 8);
  put_u32(p + 8, kChunkFileVersion);
  put_u32(p + 12, uint32_t(kChunkFileHeaderBytes));
  std::memcpy(p + 16, h.key.bytes.data(), 16);
  std::memcpy(p + 32, h.layout.data(), 16);
  put_u32(p + 48, uint32_t(h.dtype));
  put_u32(p + 52, h.num_tokens);
  put_u64(p + 56, h.payload_bytes);
  std::memcpy(p + 64, h.payload_checksum.data(), 16);
  put_u64(p + kHeaderChecksumAt, header_checksum(p));
  return out;
}

std::optional<ChunkFileHeader> decode(const uint8_t* p, std::string* why) {
  auto bad = [&](const char* reason) -> std::optional<ChunkFileHeader> {
    *why = reason;
    return std::nullopt;
  };
  if (std::memcmp(p, kChunkFileMagic, 8) != 0) return bad("not a chunk file (bad magic)");
  if (get_u32(p + 8) != kChunkFileVersion) return bad("unsupported chunk file version");
  if (get_u32(p + 12) != kChunkFileHeaderBytes) return bad("bad header size");
  if (get_u64(p + kHeaderChecksumAt) != header_checksum(p)) return bad("header checksum mismatch");
  ChunkFileHeader h;
  std::memcpy(h.key.bytes.data(), p + 16, 16);
  std::memcpy(h.layout.data(), p + 32, 16);
  uint32_t dtype = get_u32(p + 48);
  if (dtype > uint32_t(DType::kBF16)) return bad("unknown dtype");
  h.dtype = DType(dtype);
  h.num_tokens = get_u32(p + 52);
  h.payload_bytes = get_u64(p + 56);
  std::memcpy(h.payload_checksum.data(), p + 64, 16);
  return h;
}

// Reads exactly `n` bytes at `offset`; false on a short read or an error.
bool read_exact(int fd, uint8_t* out, size_t n, off_t offset) {
  while (n > 0) {
    ssize_t got = pread(fd, out, n, offset);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    n -= size_t(got);
    offset += got;
  }
  return true;
}

bool write_all(int fd, const uint8_t* data, size_t n) {
  while (n > 0) {
    ssize_t put = ::write(fd, data, n);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    data += put;
    n -= size_t(put);
  }
  return true;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens `path` and checks its header and length; the header, or nullopt with `why` set.
std::optional<ChunkFileHeader> open_checked(const std::filesystem::path& path, Fd& file,
                                            std::string* why) {
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0) {
    *why = fmt::format("cannot open: {}", std::strerror(errno));
    return std::nullopt;
  }
  struct stat st {};
  if (fstat(file.fd, &st) != 0) {
    *why = fmt::format("cannot stat: {}", std::strerror(errno));
    return std::nullopt;
  }
  std::array<uint8_t, kChunkFileHeaderBytes> raw{};
  if (uint64_t(st.st_size) < kChunkFileHeaderBytes ||
      !read_exact(file.fd, raw.data(), raw.size(), 0)) {
    *why = fmt::format("truncated header ({} bytes)", st.st_size);
    return std::nullopt;
  }
  std::optional<ChunkFileHeader> h = decode(raw.data(), why);
  if (h && uint64_t(st.st_size) != kChunkFileHeaderBytes + h->payload_bytes) {
    *why = fmt::format("{} bytes long, the header says {}", st.st_size,
                       kChunkFileHeaderBytes + h->payload_bytes);
    return std::nullopt;
  }
  return h;
}

}  // namespace

std::string chunk_file_name(const BlockHash& key) {
  return key.hex() + std::string(kChunkFileSuffix);
}

void write_chunk_file(const std::filesystem::path& path, const BlockHash& key,
                      const std::array<uint8_t, 16>& layout, uint32_t num_tokens,
                      std::span<const uint8_t> payload) {
  ChunkFileHeader h;
  h.key = key;
  h.layout = layout;
  h.dtype = DType::kF32;
  h.num_tokens = num_tokens;
  h.payload_bytes = payload.size();
  h.payload_checksum = payload_checksum(payload);
  std::array<uint8_t, kChunkFileHeaderBytes> header = encode(h);

  std::filesystem::path tmp = path;
  tmp += ".tmp";
  Fd file;
  file.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  TANDEM_CHECK(file.fd >= 0, "chunk file {}: cannot create: {}", tmp.string(),
               std::strerror(errno));
  bool ok = write_all(file.fd, header.data(), header.size()) &&
            write_all(file.fd, payload.data(), payload.size());
  int saved = errno;
  ok = ::close(file.fd) == 0 && ok;
  file.fd = -1;
  if (ok && std::rename(tmp.c_str(), path.c_str()) == 0) return;
  saved = saved ? saved : errno;
  std::error_code ignored;
  std::filesystem::remove(tmp, ignored);
  fail("chunk file {}: write failed: {}", path.string(), std::strerror(saved));
}

std::optional<ChunkFileHeader> read_chunk_file_header(const std::filesystem::path& path,
                                                      std::string* why) {
  Fd file;
  return open_checked(path, file, why);
}

std::optional<StoredChunk> read_chunk_file(const std::filesystem::path& path, const BlockHash& key,
                                           const std::array<uint8_t, 16>& layout,
                                           std::string* why) {
  Fd file;
  std::optional<ChunkFileHeader> h = open_checked(path, file, why);
  if (!h) return std::nullopt;
  if (h->key != key) {
    *why = "holds another chunk's key";
    return std::nullopt;
  }
  if (h->layout != layout || h->dtype != DType::kF32) {
    *why = "holds another model's or layout's KV";
    return std::nullopt;
  }
  StoredChunk chunk;
  chunk.num_tokens = h->num_tokens;
  chunk.bytes.resize(h->payload_bytes);
  if (!read_exact(file.fd, chunk.bytes.data(), chunk.bytes.size(), off_t(kChunkFileHeaderBytes))) {
    *why = "short read of the payload";
    return std::nullopt;
  }
  if (payload_checksum(chunk.bytes) != h->payload_checksum) {
    *why = "payload checksum mismatch";
    return std::nullopt;
  }
  return chunk;
}

}  // namespace tandem
