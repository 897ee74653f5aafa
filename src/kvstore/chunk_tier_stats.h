// ChunkTierStats: the counters each KV chunk tier (CPU, disk) reports on /metrics.
#pragma once
#include <cstdint>

namespace tandem {

// Totals since start, and the bytes held now.
struct ChunkTierStats {
  uint64_t lookups = 0;         // chunk keys looked up in this tier
  uint64_t hit_tokens = 0;      // prompt tokens loaded from chunks this tier served
  uint64_t stored_tokens = 0;   // tokens of the chunks written into this tier
  uint64_t evictions = 0;       // chunks dropped (LRU) to stay within the size limit
  uint64_t bytes_used = 0;      // bytes held now (disk: whole files, headers included)
  uint64_t bytes_limit = 0;     // the configured size limit
  uint64_t corrupt_chunks = 0;  // disk: files found torn, truncated, corrupt or gone, deleted
  uint64_t dropped_writes = 0;  // disk: chunks not written because the write queue was full
};

// The tiers of one engine; `enabled` false where a tier is off.
struct KvTierStats {
  bool cpu_enabled = false;
  bool disk_enabled = false;
  ChunkTierStats cpu;
  ChunkTierStats disk;
};

}  // namespace tandem
