// HostKvCacheIo: the KvCacheIo of the CPU backend — gathers and scatters chunks of a host KvCache
// with kv_layout.h's functions, synchronously; its payloads are plain host byte vectors.
#pragma once
#include <vector>

#include "kv/kv_cache.h"
#include "kv/kv_cache_io.h"

namespace tandem {

// KV bytes gathered into host memory.
class HostKvPayload final : public KvPayload {
 public:
  explicit HostKvPayload(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  MemoryKind memory() const override { return MemoryKind::kHost; }
  uint64_t size() const override { return bytes_.size(); }
  const uint8_t* ready_data() override { return bytes_.data(); }
  std::span<const uint8_t> host_bytes() override { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

class HostKvCacheIo final : public KvCacheIo {
 public:
  explicit HostKvCacheIo(KvCache& cache) : cache_(cache) {}  // `cache` must outlive this

  KvCacheShape shape() const override { return cache_.shape(); }
  MemoryKind memory() const override { return MemoryKind::kHost; }
  std::unique_ptr<KvPayload> gather_chunks(std::span<const int32_t> block_table,
                                           std::span<const uint32_t> chunk_tokens,
                                           int chunk_size) override;
  // `in_memory` must be kHost.
  void scatter_chunk_tokens(const uint8_t* in, uint64_t in_bytes, MemoryKind in_memory,
                            int chunk_tokens, int begin, int end,
                            std::span<const int32_t> block_table, int64_t first_token) override;
  void finish_scatters() override {}

 private:
  KvCache& cache_;
};

}  // namespace tandem
