// Gathering and scattering KV chunks: for each layer and K/V, the chunk's tokens are copied in
// runs that stay inside one cache block (consecutive slots of a block are contiguous).
#include "transfer/kv_layout.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <cstring>

#include "core/error.h"

namespace tandem {
namespace {

// The dtype as the layout fingerprint spells it ("f32" since v1, so CPU fingerprints never moved).
std::string dtype_label(DType dtype) {
  std::string name(dtype_name(dtype));
  for (char& ch : name) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return name;
}

// The floats of a chunk of n tokens that belong to one layer's K (or V): (n, kv_heads, head_dim).
int64_t section_floats(const KvCacheShape& shape, int num_tokens) {
  return int64_t(num_tokens) * shape.slot_floats();
}

// Checks the token range against the table and the table entries it touches against the cache.
void check_range(const KvCacheShape& shape, std::span<const int32_t> block_table,
                 int64_t first_token, int num_tokens, size_t bytes, uint64_t expected_bytes) {
  check_chunk_tokens(shape, block_table, first_token, num_tokens);
  TANDEM_CHECK(bytes == expected_bytes, "KV chunk: {} tokens take {} bytes, the buffer has {}",
               num_tokens, expected_bytes, bytes);
}

// Calls copy(layer, kv, cache_at, chunk_at, floats) for every run of tokens that stays inside one
// cache block, for every layer and K (kv 0) / V (kv 1): offsets in floats into cache.k/v(layer)
// and into the chunk.
// `chunk_tokens` (>= num_tokens) is the chunk's full length when only tokens
// [first_token, first_token + num_tokens) starting `skip` tokens into it are copied.
template <typename CopyRun>
void for_each_run(const KvCacheShape& shape, std::span<const int32_t> block_table,
                  int64_t first_token, int num_tokens, CopyRun copy, int chunk_tokens = 0,
                  int skip = 0) {
  const int64_t slot_floats = shape.slot_floats();
  const int64_t section = section_floats(shape, chunk_tokens > 0 ? chunk_tokens : num_tokens);
  for (int layer = 0; layer < shape.num_layers; ++layer) {
    for (int kv = 0; kv < 2; ++kv) {
      const int64_t chunk_base = (2 * layer + kv) * section + int64_t(skip) * slot_floats;
      for (int64_t t = first_token; t < first_token + num_tokens;) {
        int64_t offset = t % shape.block_size;
        int64_t run = std::min<int64_t>(shape.block_size - offset, first_token + num_tokens - t);
        int64_t slot = block_table[t / shape.block_size] * shape.block_size + offset;
        copy(layer, kv, slot * slot_floats, chunk_base + (t - first_token) * slot_floats,
             run * slot_floats);
        t += run;
      }
    }
  }
}

}  // namespace

void check_chunk_tokens(const KvCacheShape& shape, std::span<const int32_t> block_table,
                        int64_t first_token, int num_tokens) {
  TANDEM_CHECK(first_token >= 0 && num_tokens > 0, "KV chunk: bad token range [{}, +{})",
               first_token, num_tokens);
  int64_t last_block = (first_token + num_tokens - 1) / shape.block_size;
  TANDEM_CHECK(last_block < int64_t(block_table.size()),
               "KV chunk: tokens [{}, {}) need {} blocks, the sequence has {}", first_token,
               first_token + num_tokens, last_block + 1, block_table.size());
  for (int64_t b = first_token / shape.block_size; b <= last_block; ++b) {
    TANDEM_CHECK(block_table[b] >= 0 && block_table[b] < shape.num_blocks,
                 "KV chunk: block id {} outside the cache's {} blocks", block_table[b],
                 shape.num_blocks);
  }
}

KvChunkLayout KvChunkLayout::from_shape(const KvCacheShape& shape) {
  return {shape.num_layers, shape.num_kv_heads, shape.head_dim, shape.dtype};
}

uint64_t KvChunkLayout::token_bytes() const {
  return 2 * uint64_t(num_layers) * uint64_t(num_kv_heads) * uint64_t(head_dim) *
         uint64_t(dtype_size(dtype));
}

LayoutFingerprint KvChunkLayout::fingerprint(std::string_view model_fingerprint) const {
  std::string description = fmt::format(
      "tandem.kv.chunk_layout.v1;order=layer,kv,token,kv_head,dim;dtype={};layers={};"
      "kv_heads={};head_dim={};model={}",
      dtype_label(dtype), num_layers, num_kv_heads, head_dim, model_fingerprint);
  return root_block_hash(description).bytes;
}

void gather_chunk(const KvCache& cache, std::span<const int32_t> block_table, int64_t first_token,
                  int num_tokens, std::span<uint8_t> out) {
  const KvCacheShape& shape = cache.shape();
  check_range(shape, block_table, first_token, num_tokens, out.size(),
              KvChunkLayout::from_shape(shape).chunk_bytes(num_tokens));
  auto* chunk = reinterpret_cast<float*>(out.data());  // (layers, 2, n, kv_heads, head_dim)
  for_each_run(shape, block_table, first_token, num_tokens,
               [&](int layer, int kv, int64_t cache_at, int64_t chunk_at, int64_t floats) {
                 const float* layer_data = kv == 0 ? cache.k(layer) : cache.v(layer);
                 std::memcpy(chunk + chunk_at, layer_data + cache_at, floats * sizeof(float));
               });
}

void scatter_chunk(std::span<const uint8_t> in, std::span<const int32_t> block_table,
                   int64_t first_token, int num_tokens, KvCache& cache) {
  const KvCacheShape& shape = cache.shape();
  check_range(shape, block_table, first_token, num_tokens, in.size(),
              KvChunkLayout::from_shape(shape).chunk_bytes(num_tokens));
  auto* chunk = reinterpret_cast<const float*>(in.data());  // (layers, 2, n, kv_heads, head_dim)
  for_each_run(shape, block_table, first_token, num_tokens,
               [&](int layer, int kv, int64_t cache_at, int64_t chunk_at, int64_t floats) {
                 float* layer_data = kv == 0 ? cache.k(layer) : cache.v(layer);
                 std::memcpy(layer_data + cache_at, chunk + chunk_at, floats * sizeof(float));
               });
}

void scatter_chunk_tokens(std::span<const uint8_t> in, int chunk_tokens, int begin, int end,
                          std::span<const int32_t> block_table, int64_t first_token,
                          KvCache& cache) {
  TANDEM_CHECK(0 <= begin && begin < end && end <= chunk_tokens,
               "KV chunk: tokens [{}, {}) are not inside a chunk of {} tokens", begin, end,
               chunk_tokens);
  const KvCacheShape& shape = cache.shape();
  const int num_tokens = end - begin;
  check_range(shape, block_table, first_token + begin, num_tokens, in.size(),
              KvChunkLayout::from_shape(shape).chunk_bytes(chunk_tokens));
  auto* chunk = reinterpret_cast<const float*>(in.data());  // (layers, 2, chunk_tokens, ...)
  for_each_run(
      shape, block_table, first_token + begin, num_tokens,
      [&](int layer, int kv, int64_t cache_at, int64_t chunk_at, int64_t floats) {
        float* layer_data = kv == 0 ? cache.k(layer) : cache.v(layer);
        std::memcpy(layer_data + cache_at, chunk + chunk_at, floats * sizeof(float));
      },
      chunk_tokens, begin);
}

}  // namespace tandem
