// IpcBufferKey: the CUDA IPC remote key round-trips, is told apart from a UCX rkey, and every
// malformed key is refused with a WireError naming the field (no GPU needed: plain bytes).
#include "transfer/ipc_buffer_key.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "transfer/wire_codec.h"

namespace tandem {
namespace {

IpcBufferKey sample_key() {
  IpcBufferKey key;
  key.host_id = "node-1/0b8d1c9e-boot";
  key.device = "GPU 1 (PCI 0000:1b:00.0)";
  for (size_t i = 0; i < key.handle.size(); ++i) key.handle[i] = uint8_t(i * 7 + 3);
  return key;
}

std::string ipc_key_decode_error(const std::vector<uint8_t>& bytes) {
  try {
    decode_ipc_buffer_key(bytes);
  } catch (const WireError& e) {
    return e.what();
  }
  return "";
}

TEST(IpcBufferKey, RoundTrips) {
  std::vector<uint8_t> bytes = encode_ipc_buffer_key(sample_key());
  EXPECT_TRUE(is_ipc_buffer_key(bytes));
  EXPECT_EQ(decode_ipc_buffer_key(bytes), sample_key());
}

TEST(IpcBufferKey, OtherRemoteKeysAreNotIpcKeys) {
  EXPECT_FALSE(is_ipc_buffer_key(std::vector<uint8_t>{}));
  EXPECT_FALSE(is_ipc_buffer_key(std::vector<uint8_t>{'T', 'D', 'C', 'U'}));  // too short
  std::vector<uint8_t> ucx_like(200, 0x11);
  EXPECT_FALSE(is_ipc_buffer_key(ucx_like));
}

TEST(IpcBufferKey, MalformedKeysNameTheField) {
  const std::vector<uint8_t> good = encode_ipc_buffer_key(sample_key());
  std::vector<uint8_t> truncated(good.begin(), good.end() - 10);
  EXPECT_THAT(ipc_key_decode_error(truncated), testing::HasSubstr("handle"));
  std::vector<uint8_t> trailing = good;
  trailing.push_back(0);
  EXPECT_THAT(ipc_key_decode_error(trailing), testing::Not(testing::IsEmpty()));
  std::vector<uint8_t> version = good;
  version[9] = 2;  // the u16 after the 9-byte magic
  EXPECT_THAT(ipc_key_decode_error(version), testing::HasSubstr("version"));
  IpcBufferKey no_host = sample_key();
  no_host.host_id.clear();
  EXPECT_THAT(ipc_key_decode_error(encode_ipc_buffer_key(no_host)), testing::HasSubstr("host_id"));
  std::vector<uint8_t> bad_magic = good;
  bad_magic[0] = 'X';
  EXPECT_THAT(ipc_key_decode_error(bad_magic), testing::HasSubstr("magic"));
}

TEST(IpcBufferKey, HostIdNamesThisNodeStably) {
  const std::string id = this_host_id();
  EXPECT_THAT(id, testing::HasSubstr("/"));
  EXPECT_GT(id.size(), 2u);
  EXPECT_EQ(id, this_host_id());
}

}  // namespace
}  // namespace tandem
