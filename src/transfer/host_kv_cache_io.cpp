// HostKvCacheIo: chunk by chunk through gather_chunk / scatter_chunk_tokens.
#include "transfer/host_kv_cache_io.h"

#include "core/error.h"
#include "transfer/kv_layout.h"

namespace tandem {

std::unique_ptr<KvPayload> HostKvCacheIo::gather_chunks(std::span<const int32_t> block_table,
                                                        std::span<const uint32_t> chunk_tokens,
                                                        int chunk_size) {
  const KvChunkLayout layout = KvChunkLayout::from_shape(cache_.shape());
  uint64_t total = 0;
  for (uint32_t n : chunk_tokens) total += layout.chunk_bytes(int(n));
  std::vector<uint8_t> bytes(total);
  uint64_t at = 0;
  for (size_t i = 0; i < chunk_tokens.size(); ++i) {
    const uint64_t chunk_bytes = layout.chunk_bytes(int(chunk_tokens[i]));
    gather_chunk(cache_, block_table, int64_t(i) * chunk_size, int(chunk_tokens[i]),
                 std::span(bytes).subspan(at, chunk_bytes));
    at += chunk_bytes;
  }
  return std::make_unique<HostKvPayload>(std::move(bytes));
}

void HostKvCacheIo::scatter_chunk_tokens(const uint8_t* in, uint64_t in_bytes,
                                         MemoryKind in_memory, int chunk_tokens, int begin,
                                         int end, std::span<const int32_t> block_table,
                                         int64_t first_token) {
  TANDEM_CHECK(in_memory == MemoryKind::kHost,
               "KV chunk: the CPU engine cannot load KV from GPU memory (pd_buffer_device: cuda "
               "needs --device cuda)");
  tandem::scatter_chunk_tokens(std::span(in, size_t(in_bytes)), chunk_tokens, begin, end,
                               block_table, first_token, cache_);
}

}  // namespace tandem
