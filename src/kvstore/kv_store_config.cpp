// Resolving the tiers from the LMCache config.
#include "kvstore/kv_store_config.h"

#include <cmath>

#include "core/error.h"

namespace tandem {
namespace {

constexpr double kGiB = double(uint64_t(1) << 30);  // LMCache's sizes are GB of 2^30 bytes

uint64_t gb_to_bytes(double gb) { return uint64_t(std::llround(gb * kGiB)); }

}  // namespace

std::optional<KvStoreConfig> make_kv_store_config(const KvTransferConfig& kv,
                                                  const LmCacheConfig& c) {
  if (kv.kv_role == KvRole::kConsumer || c.is_receiver()) return std::nullopt;
  TANDEM_CHECK(!c.save_decode_cache,
               "{}: 'save_decode_cache' is 'true', but Tandem's KV tiers store prompt KV only; "
               "set it to false",
               c.source);
  KvStoreConfig out;
  out.chunk_size = c.chunk_size;
  if (c.local_cpu) out.store.cpu_bytes = gb_to_bytes(c.max_local_cpu_size_gb);
  if (c.local_disk) {
    TANDEM_CHECK(c.max_local_disk_size_gb > 0 && gb_to_bytes(c.max_local_disk_size_gb) > 0,
                 "{}: 'local_disk' is '{}', so 'max_local_disk_size' must be positive (GB), got "
                 "{}",
                 c.source, *c.local_disk, c.max_local_disk_size_gb);
    out.store.disk_dir = *c.local_disk;
    out.store.disk_bytes = gb_to_bytes(c.max_local_disk_size_gb);
  }
  if (out.store.cpu_bytes == 0 && !out.store.disk_dir) return std::nullopt;
  return out;
}

}  // namespace tandem
