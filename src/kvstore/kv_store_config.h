// KvStoreConfig: the KV chunk tiers an engine keeps, resolved at start-up from the LMCache YAML
// (local_cpu, max_local_cpu_size, local_disk, max_local_disk_size, chunk_size,
// save_decode_cache) for a --kv-transfer-config role that stores KV: kv_both or kv_producer.
// A decoder (kv_consumer, or pd_role receiver) keeps no tiers: its KV comes from the prefiller.
#pragma once
#include <optional>

#include "config/kv_transfer_config.h"
#include "config/lmcache_config.h"
#include "kvstore/chunk_store.h"

namespace tandem {

struct KvStoreConfig {
  int chunk_size = 256;  // tokens per chunk; a last partial chunk is stored too
  ChunkStoreConfig store;
};

// The tiers, or nullopt when the role keeps none or both tiers are off (local_cpu false or
// max_local_cpu_size 0, and no local_disk). Throws tandem::Error naming the source and key for
// a local_disk without a positive max_local_disk_size and for save_decode_cache (Tandem stores
// prompt KV only; on a receiver the LMCache config already refuses it).
std::optional<KvStoreConfig> make_kv_store_config(const KvTransferConfig& kv,
                                                  const LmCacheConfig& lmcache);

}  // namespace tandem
