// KvCacheIo: how the KV connector reads and writes the engine's paged KV cache, wherever it lives
// (host memory on the CPU backend, GPU memory on the CUDA backend). A request's prompt KV is
// gathered into one KvPayload of chunks laid back to back in the chunk layout of
// transfer/kv_layout.h (per chunk: (layers, 2 [K, V], n, kv_heads, head_dim) in the cache's dtype),
// and received chunks are scattered back into a sequence's blocks. The engine picks the
// implementation (host: transfer/host_kv_cache_io.h; CUDA: backend/cuda_kv_cache_io.h); the
// connector above sees only this interface, so the CPU path is the one it always was.
#pragma once
#include <cstdint>
#include <memory>
#include <span>

#include "kv/kv_cache.h"

namespace tandem {

// Where bytes live: host memory, or device memory of this process's GPU (or one mapped into it).
enum class MemoryKind { kHost, kCuda };

// One request's gathered KV chunks, back to back (size() bytes), in host or device memory.
class KvPayload {
 public:
  virtual ~KvPayload() = default;
  virtual MemoryKind memory() const = 0;
  virtual uint64_t size() const = 0;
  // The bytes (in memory()), once every copy into them has landed: waits for that.
  virtual const uint8_t* ready_data() = 0;
  // The bytes in host memory: a host payload's own, a device payload's downloaded once.
  virtual std::span<const uint8_t> host_bytes() = 0;
};

class KvCacheIo {
 public:
  virtual ~KvCacheIo() = default;

  virtual KvCacheShape shape() const = 0;
  // Where gather_chunks puts its payloads.
  virtual MemoryKind memory() const = 0;

  // Gathers the sequence's chunks: chunk i holds chunk_tokens[i] tokens starting at token
  // i * chunk_size (every chunk but the last is chunk_size long); `block_table` lists the
  // sequence's block ids. May return before the copies end (ready_data() waits); later writes
  // to the cache by the engine are ordered after them. Throws tandem::Error for a token outside
  // the table, a block id outside the cache, or no room for the payload.
  virtual std::unique_ptr<KvPayload> gather_chunks(std::span<const int32_t> block_table,
                                                   std::span<const uint32_t> chunk_tokens,
                                                   int chunk_size) = 0;

  // Writes tokens [first_token + begin, first_token + end) of one gathered chunk of
  // `chunk_tokens` tokens (in: chunk_bytes(chunk_tokens) bytes in `in_memory`) that starts at
  // token `first_token` of the sequence into its blocks. May return before the copy ends:
  // finish_scatters() waits. Throws tandem::Error as kv_layout.h's scatter_chunk_tokens.
  virtual void scatter_chunk_tokens(const uint8_t* in, uint64_t in_bytes, MemoryKind in_memory,
                                    int chunk_tokens, int begin, int end,
                                    std::span<const int32_t> block_table, int64_t first_token) = 0;
  // Returns once every scatter issued so far is in the cache (and `in` may be reused).
  virtual void finish_scatters() = 0;
  // Makes room for `bytes` of payloads before the first gather needs it: a GPU memory pool grows
  // on first use, in the first request's time otherwise. Best effort; nothing to do on the host.
  virtual void reserve_payloads(uint64_t bytes) { (void)bytes; }
};

}  // namespace tandem
