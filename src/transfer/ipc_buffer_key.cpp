// IpcBufferKey's codec, over the wire codec's reader and writer, and the node identity.
#include "transfer/ipc_buffer_key.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string_view>

#include "transfer/wire_codec.h"

namespace tandem {
namespace {

constexpr std::string_view kIpcKeyMagic = "TDCUDAIPC";
constexpr uint16_t kKeyVersion = 1;
constexpr size_t kMaxKeyText = 256;

}  // namespace

std::vector<uint8_t> encode_ipc_buffer_key(const IpcBufferKey& key) {
  WireWriter w;
  for (char c : kIpcKeyMagic)
    w.u8(uint8_t(c));  // (not raw(): GCC 12 misreads an insert into empty)
  w.u16(kKeyVersion);
  w.str(key.host_id);
  w.str(key.device);
  w.u32(uint32_t(key.handle.size()));
  w.raw(key.handle);
  return std::move(w.bytes());
}

bool is_ipc_buffer_key(std::span<const uint8_t> rkey) {
  return rkey.size() >= kIpcKeyMagic.size() &&
         std::equal(kIpcKeyMagic.begin(), kIpcKeyMagic.end(),
                    reinterpret_cast<const char*>(rkey.data()));
}

IpcBufferKey decode_ipc_buffer_key(std::span<const uint8_t> rkey) {
  WireReader r(rkey, "CUDA IPC buffer key");
  std::span<const uint8_t> magic = r.raw(kIpcKeyMagic.size(), "magic");
  if (!std::equal(kIpcKeyMagic.begin(), kIpcKeyMagic.end(),
                  reinterpret_cast<const char*>(magic.data()))) {
    r.fail_field("magic", "is not TDCUDAIPC");
  }
  if (uint16_t version = r.u16("version"); version != kKeyVersion) {
    r.fail_field("version", "is not 1");
  }
  IpcBufferKey key;
  key.host_id = r.str(1, kMaxKeyText, "host_id");
  key.device = r.str(0, kMaxKeyText, "device");
  if (r.u32("handle_bytes") != kCudaIpcHandleBytes) r.fail_field("handle_bytes", "is not 64");
  std::span<const uint8_t> handle = r.raw(kCudaIpcHandleBytes, "handle");
  std::memcpy(key.handle.data(), handle.data(), key.handle.size());  // raw() gave exactly 64
  r.expect_end();
  return key;
}

std::string this_host_id() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) name[0] = '\0';
  std::string boot_id;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot_id;
  return std::string(name) + "/" + boot_id;
}

}  // namespace tandem
