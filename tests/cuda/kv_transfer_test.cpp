// KV transfer on the GPU: the kv_chunk_copy kernel against a host reference of the chunk layout
// (transfer/kv_layout.h, per chunk (layers, 2, n, kv_heads, head_dim)) over a shape sweep — 16-byte
// and 2-byte row paths, block sizes that do and do not divide the chunk size, 1-token and partial
// chunks — and CudaKvCacheIo's gather (one payload per request) and scatter (from GPU and from host
// memory) between two caches with different block tables. Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "backend/cuda_kv_cache_io.h"
#include "core/error.h"
#include "cuda_test_util.h"
#include "kernels/cuda/kv_chunk_copy.cuh"
#include "transfer/kv_layout.h"

namespace tandem::test {
namespace {

struct CacheShapeCase {
  int num_layers, num_kv_heads, head_dim, block_size, num_blocks;
};

// A bf16 cache on the GPU with its host copy (bit patterns), per layer K and V.
struct DeviceCache {
  KvCacheShape shape;
  std::vector<std::vector<uint16_t>> k, v;  // host: (layers) x (slots * slot_elems)
  std::vector<cuda::DeviceBuffer<cuda::bf16>> dk, dv;

  DeviceCache(const CacheShapeCase& c, uint32_t seed) {
    shape = {c.num_layers, c.num_blocks, c.block_size, c.num_kv_heads, c.head_dim, DType::kBF16};
    std::mt19937 rng(seed);
    const size_t n = size_t(shape.layer_floats());
    for (int l = 0; l < c.num_layers; ++l) {
      for (auto* side : {&k, &v}) {
        std::vector<uint16_t> h(n);
        for (auto& x : h) x = seed == 0 ? 0 : uint16_t(rng());
        side->push_back(h);
        (side == &k ? dk : dv).emplace_back(n);
        (side == &k ? dk : dv).back().upload(reinterpret_cast<const cuda::bf16*>(h.data()), n);
      }
    }
  }
  CudaKvCacheView view(cudaStream_t stream) {
    CudaKvCacheView out{shape, {}, {}, stream, 0};
    for (size_t l = 0; l < dk.size(); ++l) {
      out.k_layers.push_back(dk[l].data());
      out.v_layers.push_back(dv[l].data());
    }
    return out;
  }
  std::vector<uint16_t> download(int layer, int kv) const {
    const auto& d = kv == 0 ? dk[size_t(layer)] : dv[size_t(layer)];
    std::vector<cuda::bf16> raw = d.download();
    std::vector<uint16_t> out(raw.size());
    std::memcpy(out.data(), raw.data(), raw.size() * 2);
    return out;
  }
};

// Host reference: the run's chunks (chunk_size tokens each, the last shorter) back to back.
std::vector<uint16_t> reference_chunks(const DeviceCache& c, const std::vector<int32_t>& table,
                                       int64_t run_tokens, int64_t chunk_size) {
  const KvCacheShape& s = c.shape;
  const int64_t slot = s.slot_floats();
  std::vector<uint16_t> out;
  for (int64_t first = 0; first < run_tokens; first += chunk_size) {
    const int64_t n = std::min(chunk_size, run_tokens - first);
    for (int l = 0; l < s.num_layers; ++l) {
      for (int kv = 0; kv < 2; ++kv) {
        const auto& layer = kv == 0 ? c.k[size_t(l)] : c.v[size_t(l)];
        for (int64_t t = first; t < first + n; ++t) {
          const int64_t at =
              (int64_t(table[size_t(t / s.block_size)]) * s.block_size + t % s.block_size) * slot;
          out.insert(out.end(), layer.begin() + at, layer.begin() + at + slot);
        }
      }
    }
  }
  return out;
}

std::vector<int32_t> shuffled_table(int64_t tokens, const KvCacheShape& s, uint32_t seed) {
  std::vector<int32_t> ids(size_t(s.num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
  ids.resize(size_t((tokens + s.block_size - 1) / s.block_size));
  return ids;
}

std::vector<uint32_t> chunk_lengths(int64_t tokens, int chunk_size) {
  std::vector<uint32_t> out;
  for (int64_t t = 0; t < tokens; t += chunk_size) {
    out.push_back(uint32_t(std::min<int64_t>(chunk_size, tokens - t)));
  }
  return out;
}

class KvTransferCuda : public CudaTest {};

// reserve_payloads grows the device's default pool, which keeps the memory for the gathers.
TEST_F(KvTransferCuda, ReservePayloadsGrowsThePoolAhead) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  DeviceCache cache({2, 1, 8, 16, 8}, 3);
  CudaKvCacheIo io(cache.view(stream));
  int device = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  cudaMemPool_t pool = nullptr;
  ASSERT_EQ(cudaDeviceGetDefaultMemPool(&pool, device), cudaSuccess);
  const uint64_t bytes = 256ull << 20;
  io.reserve_payloads(bytes);
  uint64_t reserved = 0;
  ASSERT_EQ(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved),
            cudaSuccess);
  EXPECT_GE(reserved, bytes);
  cudaStreamDestroy(stream);
}

TEST_F(KvTransferCuda, GatherMatchesTheHostLayoutOverShapes) {
  const CacheShapeCase shapes[] = {
      {3, 2, 8, 16, 40},    // 32-byte rows: the 16-byte path
      {2, 1, 3, 5, 60},     // 6-byte rows: the 2-byte path
      {4, 8, 128, 16, 24},  // Llama-3-8B rows (2 KiB)
  };
  const int64_t token_counts[] = {1, 37, 150};
  const int chunk_sizes[] = {7, 16, 256};
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  for (const CacheShapeCase& c : shapes) {
    DeviceCache cache(c, 7);
    CudaKvCacheIo io(cache.view(stream));
    for (int64_t tokens : token_counts) {
      if (tokens > c.num_blocks * c.block_size) continue;
      const std::vector<int32_t> table = shuffled_table(tokens, cache.shape, uint32_t(tokens));
      for (int chunk_size : chunk_sizes) {
        SCOPED_TRACE(testing::Message()
                     << "kv_heads " << c.num_kv_heads << " head_dim " << c.head_dim << " block "
                     << c.block_size << " tokens " << tokens << " chunk " << chunk_size);
        std::unique_ptr<KvPayload> payload =
            io.gather_chunks(table, chunk_lengths(tokens, chunk_size), chunk_size);
        ASSERT_EQ(payload->memory(), MemoryKind::kCuda);
        const std::vector<uint16_t> expected = reference_chunks(cache, table, tokens, chunk_size);
        ASSERT_EQ(payload->size(), expected.size() * 2);
        std::span<const uint8_t> got = payload->host_bytes();
        EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size()), 0);
      }
    }
  }
  cudaStreamDestroy(stream);
}

TEST_F(KvTransferCuda, ScatterLoadsExactlyTheAskedTokensFromGpuOrHostMemory) {
  const CacheShapeCase c{3, 2, 8, 4, 64};
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  DeviceCache source(c, 3);
  CudaKvCacheIo source_io(source.view(stream));
  const int64_t tokens = 40;
  const int chunk_size = 16;  // chunks of 16, 16, 8
  const std::vector<int32_t> table = shuffled_table(tokens, source.shape, 1);
  std::unique_ptr<KvPayload> payload =
      source_io.gather_chunks(table, chunk_lengths(tokens, chunk_size), chunk_size);
  const KvChunkLayout layout = KvChunkLayout::from_shape(source.shape);
  for (MemoryKind from : {MemoryKind::kCuda, MemoryKind::kHost}) {
    SCOPED_TRACE(from == MemoryKind::kCuda ? "from GPU memory" : "from host memory");
    DeviceCache target(c, 0);  // zeroed
    CudaKvCacheIo target_io(target.view(stream));
    const std::vector<int32_t> other = shuffled_table(tokens, target.shape, 2);
    const uint8_t* base =
        from == MemoryKind::kCuda ? payload->ready_data() : payload->host_bytes().data();
    // Chunk 0 whole, chunk 1 tokens 3..10, chunk 2 (8 tokens) tokens 0..5.
    const struct {
      int chunk, tokens, begin, end;
    } parts[] = {{0, 16, 0, 16}, {1, 16, 3, 11}, {2, 8, 0, 5}};
    for (const auto& p : parts) {
      target_io.scatter_chunk_tokens(base + layout.chunk_bytes(16) * uint64_t(p.chunk),
                                     layout.chunk_bytes(p.tokens), from, p.tokens, p.begin, p.end,
                                     other, int64_t(p.chunk) * 16);
    }
    target_io.finish_scatters();
    const int64_t slot = source.shape.slot_floats();
    for (int l = 0; l < c.num_layers; ++l) {
      for (int kv = 0; kv < 2; ++kv) {
        const std::vector<uint16_t> got = target.download(l, kv);
        const auto& want = kv == 0 ? source.k[size_t(l)] : source.v[size_t(l)];
        for (int64_t t = 0; t < tokens; ++t) {
          const bool loaded = t < 16 || (t >= 19 && t < 27) || (t >= 32 && t < 37);
          const int64_t at = (int64_t(other[size_t(t / 4)]) * 4 + t % 4) * slot;
          const int64_t src = (int64_t(table[size_t(t / 4)]) * 4 + t % 4) * slot;
          for (int64_t e = 0; e < slot; ++e) {
            ASSERT_EQ(got[size_t(at + e)], loaded ? want[size_t(src + e)] : 0)
                << "layer " << l << " kv " << kv << " token " << t;
          }
        }
      }
    }
  }
  cudaStreamDestroy(stream);
}

TEST_F(KvTransferCuda, BadRangesAreRefusedBeforeAnyCopy) {
  const CacheShapeCase c{2, 1, 8, 4, 8};
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  DeviceCache cache(c, 5);
  CudaKvCacheIo io(cache.view(stream));
  const std::vector<uint32_t> chunks = {4};
  EXPECT_THROW(io.gather_chunks(std::vector<int32_t>{9}, chunks, 4), Error);  // block 9 of 8
  EXPECT_THROW(io.gather_chunks(std::vector<int32_t>{0}, std::vector<uint32_t>{3, 1}, 4),
               Error);  // a short chunk before the last
  EXPECT_THROW(io.gather_chunks(std::vector<int32_t>{0}, std::vector<uint32_t>{5}, 4),
               Error);  // 5 tokens, one 4-token block
  std::unique_ptr<KvPayload> payload = io.gather_chunks(std::vector<int32_t>{1}, chunks, 4);
  const uint64_t bytes = payload->size();
  EXPECT_THROW(io.scatter_chunk_tokens(payload->ready_data(), bytes - 2, MemoryKind::kCuda, 4, 0, 4,
                                       std::vector<int32_t>{2}, 0),
               Error);  // wrong size
  EXPECT_THROW(io.scatter_chunk_tokens(payload->ready_data(), bytes, MemoryKind::kCuda, 4, 2, 2,
                                       std::vector<int32_t>{2}, 0),
               Error);  // empty range
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace tandem::test
