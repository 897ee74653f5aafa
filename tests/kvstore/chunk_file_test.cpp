// The disk tier's file format: a chunk written and read back is byte-identical, and every kind
// of damage — a flipped payload or header byte, a truncated file, a wrong key or layout, a file
// that is not a chunk at all — is detected and never yields bytes.
#include "kvstore/chunk_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "test_support.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;

BlockHash key_of(int n) { return root_block_hash("key" + std::to_string(n)); }
const std::array<uint8_t, 16> kLayout = root_block_hash("layout").bytes;

std::vector<uint8_t> payload_of(size_t n, int seed) {
  std::vector<uint8_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = uint8_t(i * 31 + size_t(seed) * 7);
  return p;
}

void flip_byte(const fs::path& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(offset));
  char c = 0;
  f.read(&c, 1);
  c = char(c ^ 0x5a);
  f.seekp(std::streamoff(offset));
  f.write(&c, 1);
}

class ChunkFileTest : public testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("tandem-chunk-file"); }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(int n, size_t bytes = 1000) {
    fs::path p = dir_ / chunk_file_name(key_of(n));
    write_chunk_file(p, key_of(n), kLayout, 7, payload_of(bytes, n));
    return p;
  }
  std::optional<StoredChunk> read(const fs::path& p, int n) {
    why_.clear();
    return read_chunk_file(p, key_of(n), kLayout, &why_);
  }

  fs::path dir_;
  std::string why_;
};

TEST_F(ChunkFileTest, RoundTrips) {
  fs::path p = write(1);
  EXPECT_EQ(p.filename().string(), key_of(1).hex() + ".chunk");
  EXPECT_EQ(fs::file_size(p), kChunkFileHeaderBytes + 1000);
  EXPECT_FALSE(fs::exists(p.string() + ".tmp"));
  auto chunk = read(p, 1);
  ASSERT_TRUE(chunk) << why_;
  EXPECT_EQ(chunk->num_tokens, 7u);
  EXPECT_EQ(chunk->bytes, payload_of(1000, 1));
  std::string why;
  auto header = read_chunk_file_header(p, &why);
  ASSERT_TRUE(header) << why;
  EXPECT_EQ(header->key, key_of(1));
  EXPECT_EQ(header->payload_bytes, 1000u);
}

TEST_F(ChunkFileTest, FlippedPayloadByteIsDetected) {
  fs::path p = write(2);
  flip_byte(p, kChunkFileHeaderBytes + 500);
  EXPECT_FALSE(read(p, 2));
  EXPECT_EQ(why_, "payload checksum mismatch");
  // The header alone still checks out: only a full read finds payload damage.
  std::string why;
  EXPECT_TRUE(read_chunk_file_header(p, &why));
}

TEST_F(ChunkFileTest, FlippedHeaderBytesAreDetected) {
  for (uint64_t offset : {0, 9, 20, 40, 50, 53, 60, 70, 90}) {
    fs::path p = write(3);
    flip_byte(p, offset);
    EXPECT_FALSE(read(p, 3)) << "offset " << offset;
    std::string why;
    EXPECT_FALSE(read_chunk_file_header(p, &why)) << "offset " << offset;
  }
}

TEST_F(ChunkFileTest, TruncatedOrExtendedFilesAreDetected) {
  for (uint64_t size : {0, 10, 95, 96, 500, 1095}) {
    fs::path p = write(4);
    fs::resize_file(p, size);
    EXPECT_FALSE(read(p, 4)) << "size " << size;
    std::string why;
    EXPECT_FALSE(read_chunk_file_header(p, &why)) << "size " << size;
  }
  fs::path p = write(4);
  std::ofstream(p, std::ios::app | std::ios::binary) << "x";
  EXPECT_FALSE(read(p, 4));
}

TEST_F(ChunkFileTest, WrongKeyOrLayoutIsRefused) {
  fs::path p = write(5);
  EXPECT_FALSE(read(p, 6));
  EXPECT_EQ(why_, "holds another chunk's key");
  std::string why;
  EXPECT_FALSE(read_chunk_file(p, key_of(5), root_block_hash("other").bytes, &why));
  EXPECT_EQ(why, "holds another model's or layout's KV");
}

TEST_F(ChunkFileTest, MissingOrForeignFilesAreMisses) {
  EXPECT_FALSE(read(dir_ / "absent.chunk", 1));
  fs::path junk = dir_ / "junk.chunk";
  std::ofstream(junk) << std::string(200, 'j');
  EXPECT_FALSE(read(junk, 1));
  EXPECT_EQ(why_, "not a chunk file (bad magic)");
}

TEST_F(ChunkFileTest, UnwritableDirectoryIsAnError) {
  fs::path p = dir_ / "no-such-dir" / "x.chunk";
  try {
    write_chunk_file(p, key_of(1), kLayout, 1, payload_of(10, 1));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem
