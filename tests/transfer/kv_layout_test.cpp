// KvChunkLayout: gathering a chunk from one paged cache and scattering it into another (other
// block ids, another block size) moves every float of K and V to the same (layer, token) place;
// sizes, fingerprints and bad ranges are checked.
#include "transfer/kv_layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/error.h"
#include "transfer/host_kv_cache_io.h"

namespace tandem {
namespace {

KvCacheShape shape_with(int block_size, int num_blocks) {
  KvCacheShape s;
  s.num_layers = 3;
  s.num_blocks = num_blocks;
  s.block_size = block_size;
  s.num_kv_heads = 2;
  s.head_dim = 4;
  return s;
}

// The K (kv 0) or V (kv 1) floats of token t of a sequence, as stored in `cache` via `table`.
const float* token_kv(const KvCache& cache, std::span<const int32_t> table, int layer, int kv,
                      int64_t t) {
  const KvCacheShape& s = cache.shape();
  int64_t slot = table[t / s.block_size] * s.block_size + t % s.block_size;
  return (kv == 0 ? cache.k(layer) : cache.v(layer)) + slot * s.slot_floats();
}

void fill_random(KvCache& cache, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  const KvCacheShape& s = cache.shape();
  for (int layer = 0; layer < s.num_layers; ++layer) {
    for (int64_t i = 0; i < s.layer_floats(); ++i) {
      cache.k(layer)[i] = dist(rng);
      cache.v(layer)[i] = dist(rng);
    }
  }
}

TEST(KvLayout, SizesAndFingerprint) {
  KvChunkLayout layout = KvChunkLayout::from_shape(shape_with(16, 8));
  EXPECT_EQ(layout.token_bytes(), 2u * 3 * 2 * 4 * 4);
  EXPECT_EQ(layout.chunk_bytes(256), 256 * layout.token_bytes());
  EXPECT_EQ(layout.fingerprint("m"), layout.fingerprint("m"));
  EXPECT_NE(layout.fingerprint("m"), layout.fingerprint("other"));
  KvChunkLayout other = layout;
  other.head_dim = 8;
  EXPECT_NE(layout.fingerprint("m"), other.fingerprint("m"));
  // The block size is not part of the layout: caches with different blocks exchange chunks.
  EXPECT_EQ(layout.fingerprint("m"), KvChunkLayout::from_shape(shape_with(32, 4)).fingerprint("m"));
}

TEST(KvLayout, Bf16CacheHalvesTheBytesAndHasItsOwnFingerprint) {
  KvCacheShape bf16_shape = shape_with(16, 8);
  bf16_shape.dtype = DType::kBF16;
  KvChunkLayout f32 = KvChunkLayout::from_shape(shape_with(16, 8));
  KvChunkLayout bf16 = KvChunkLayout::from_shape(bf16_shape);
  EXPECT_EQ(bf16.token_bytes(), 2u * 3 * 2 * 4 * 2);
  // A CUDA (bf16) engine and a CPU (f32) engine never take each other's chunks.
  EXPECT_NE(f32.fingerprint("m"), bf16.fingerprint("m"));
}

TEST(KvLayout, HostKvCacheIoGathersChunksBackToBackAndScattersThem) {
  KvCache source(shape_with(4, 16));
  fill_random(source, 11);
  const std::vector<int32_t> table = {5, 2, 9, 0, 7, 3};  // 24 tokens
  const std::vector<uint32_t> chunks = {8, 8, 5};         // chunk_size 8, a partial last chunk
  HostKvCacheIo io(source);
  std::unique_ptr<KvPayload> payload = io.gather_chunks(table, chunks, 8);
  ASSERT_EQ(payload->memory(), MemoryKind::kHost);
  const KvChunkLayout layout = KvChunkLayout::from_shape(source.shape());
  ASSERT_EQ(payload->size(), layout.chunk_bytes(21));
  uint64_t at = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    std::vector<uint8_t> expected(layout.chunk_bytes(int(chunks[i])));
    gather_chunk(source, table, int64_t(i) * 8, int(chunks[i]), expected);
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), payload->host_bytes().begin() + at))
        << "chunk " << i;
    at += expected.size();
  }
  // Scattering the middle chunk's tokens 2..6 into another cache puts exactly those in place.
  KvCache target(shape_with(4, 16));
  HostKvCacheIo target_io(target);
  const std::vector<int32_t> other_table = {1, 4, 6, 8, 10, 12};
  const uint8_t* middle = payload->ready_data() + layout.chunk_bytes(8);
  target_io.scatter_chunk_tokens(middle, layout.chunk_bytes(8), MemoryKind::kHost, 8, 2, 6,
                                 other_table, 8);
  target_io.finish_scatters();
  for (int64_t t = 10; t < 14; ++t) {
    for (int layer = 0; layer < 3; ++layer) {
      EXPECT_TRUE(std::equal(token_kv(source, table, layer, 1, t),
                             token_kv(source, table, layer, 1, t) + 8,
                             token_kv(target, other_table, layer, 1, t)));
    }
  }
  // The CPU engine cannot read a GPU buffer.
  EXPECT_THROW(target_io.scatter_chunk_tokens(middle, layout.chunk_bytes(8), MemoryKind::kCuda, 8,
                                              0, 8, other_table, 8),
               Error);
}

TEST(KvLayout, GatherThenScatterAcrossBlockSizes) {
  KvCache sender(shape_with(16, 12));
  KvCache receiver(shape_with(8, 40));
  fill_random(sender, 1);
  std::vector<int32_t> sender_table = {7, 2, 9, 0, 11, 5};  // 96 tokens
  std::vector<int32_t> receiver_table;                      // 12 blocks, shuffled
  for (int32_t b = 39; b >= 28; --b) receiver_table.push_back(b);
  KvChunkLayout layout = KvChunkLayout::from_shape(sender.shape());
  // Chunks of 40 tokens: [0, 40), [40, 80), [80, 93) — unaligned to either block size.
  for (auto [first, n] : {std::pair<int64_t, int>{0, 40}, {40, 40}, {80, 13}}) {
    std::vector<uint8_t> chunk(layout.chunk_bytes(n));
    gather_chunk(sender, sender_table, first, n, chunk);
    scatter_chunk(chunk, receiver_table, first, n, receiver);
  }
  for (int layer = 0; layer < 3; ++layer) {
    for (int kv = 0; kv < 2; ++kv) {
      for (int64_t t = 0; t < 93; ++t) {
        const float* a = token_kv(sender, sender_table, layer, kv, t);
        const float* b = token_kv(receiver, receiver_table, layer, kv, t);
        ASSERT_EQ(std::vector<float>(a, a + 8), std::vector<float>(b, b + 8))
            << "layer " << layer << " kv " << kv << " token " << t;
      }
    }
  }
}

TEST(KvLayout, ChunkIsLayerMajorThenKvThenToken) {
  KvCache cache(shape_with(4, 4));
  fill_random(cache, 2);
  std::vector<int32_t> table = {3, 1};
  KvChunkLayout layout = KvChunkLayout::from_shape(cache.shape());
  std::vector<uint8_t> chunk(layout.chunk_bytes(6));
  gather_chunk(cache, table, 1, 6, chunk);
  const auto* floats = reinterpret_cast<const float*>(chunk.data());
  // Layer 2, V, token 3 of the chunk (sequence token 4: block 1 -> id 1, slot 0).
  const float* expected = cache.v(2) + (1 * 4 + 0) * 8;
  const float* got = floats + ((2 * 2 + 1) * 6 + 3) * 8;
  EXPECT_EQ(std::vector<float>(got, got + 8), std::vector<float>(expected, expected + 8));
}

TEST(KvLayout, BadRangesAreErrors) {
  KvCache cache(shape_with(4, 4));
  KvChunkLayout layout = KvChunkLayout::from_shape(cache.shape());
  std::vector<int32_t> table = {0, 1};
  std::vector<uint8_t> chunk(layout.chunk_bytes(4));
  EXPECT_THROW(gather_chunk(cache, table, 6, 4, chunk), Error);  // past the table
  EXPECT_THROW(gather_chunk(cache, table, -1, 4, chunk), Error);
  EXPECT_THROW(gather_chunk(cache, table, 0, 0, chunk), Error);
  EXPECT_THROW(gather_chunk(cache, table, 0, 3, chunk), Error);  // wrong buffer size
  std::vector<int32_t> bad_table = {0, 9};
  EXPECT_THROW(scatter_chunk(chunk, bad_table, 4, 4, cache), Error);  // block id outside
  EXPECT_NO_THROW(gather_chunk(cache, table, 4, 4, chunk));
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// A receiver loading part of a chunk: only tokens [begin, end) of it land in the cache.
TEST(KvLayout, ScatterPartOfAChunk) {
  KvCache sender(shape_with(16, 4));
  fill_random(sender, 11);
  std::vector<int32_t> tx_table = {2, 0, 3};  // 48 tokens
  const int first = 16, chunk_tokens = 20;    // the chunk covers tokens [16, 36)
  KvChunkLayout layout = KvChunkLayout::from_shape(sender.shape());
  std::vector<uint8_t> bytes(layout.chunk_bytes(chunk_tokens));
  gather_chunk(sender, tx_table, first, chunk_tokens, bytes);

  KvCache receiver(shape_with(8, 8));               // zeroed
  std::vector<int32_t> rx_table = {7, 6, 5, 4, 3};  // 40 tokens
  scatter_chunk_tokens(bytes, chunk_tokens, /*begin=*/5, /*end=*/17, rx_table, first, receiver);
  const size_t floats = size_t(receiver.shape().slot_floats());
  for (int layer = 0; layer < 3; ++layer) {
    for (int kv = 0; kv < 2; ++kv) {
      for (int t = 0; t < 40; ++t) {
        const float* got = token_kv(receiver, rx_table, layer, kv, t);
        bool loaded = t >= first + 5 && t < first + 17;
        if (loaded) {
          const float* want = token_kv(sender, tx_table, layer, kv, t);
          EXPECT_TRUE(std::equal(got, got + floats, want)) << layer << " " << kv << " " << t;
        } else {
          EXPECT_TRUE(std::all_of(got, got + floats, [](float f) { return f == 0; })) << t;
        }
      }
    }
  }
  EXPECT_THROW(scatter_chunk_tokens(bytes, chunk_tokens, 5, 21, rx_table, first, receiver), Error);
  EXPECT_THROW(scatter_chunk_tokens(bytes, chunk_tokens, 5, 5, rx_table, first, receiver), Error);
  EXPECT_THROW(scatter_chunk_tokens(bytes, chunk_tokens + 1, 0, 4, rx_table, first, receiver),
               Error);  // wrong size
}

}  // namespace
}  // namespace tandem
