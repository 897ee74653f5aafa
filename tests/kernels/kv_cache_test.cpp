// KvCache: sizes and layout ([num_blocks][block_size][num_kv_heads][head_dim] per layer, K and V
// separate and zeroed), and errors for bad shapes and layer indices.
#include "kv/kv_cache.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace tandem {
namespace {

TEST(KvCache, LayoutIsBlocksThenSlotsThenHeads) {
  const KvCacheShape shape{/*num_layers=*/3, /*num_blocks=*/5, /*block_size=*/4,
                           /*num_kv_heads=*/2, /*head_dim=*/8};
  KvCache kv(shape);
  EXPECT_EQ(shape.num_slots(), 20);
  EXPECT_EQ(shape.slot_floats(), 16);
  EXPECT_EQ(shape.layer_floats(), 320);
  EXPECT_EQ(shape.total_bytes(), 2 * 3 * 320 * 4);
  for (int layer = 0; layer < 3; ++layer) {
    for (int64_t i = 0; i < shape.layer_floats(); ++i) {
      ASSERT_EQ(kv.k(layer)[i], 0.0f);
      ASSERT_EQ(kv.v(layer)[i], 0.0f);
    }
  }
  // Block 3, offset 2, head 1, element 5 of layer 1 is float ((3 * 4 + 2) * 2 + 1) * 8 + 5.
  kv.k(1)[((3 * 4 + 2) * 2 + 1) * 8 + 5] = 1.5f;
  EXPECT_EQ(kv.v(1)[((3 * 4 + 2) * 2 + 1) * 8 + 5], 0.0f);  // K and V are separate arrays
  EXPECT_EQ(kv.k(0)[((3 * 4 + 2) * 2 + 1) * 8 + 5], 0.0f);  // so are layers
  const KvCache& ckv = kv;
  EXPECT_EQ(ckv.k(1)[(14 * 2 + 1) * 8 + 5], 1.5f);  // slot 14 = block 3 * 4 + offset 2
}

TEST(KvCache, RejectsBadShapesAndLayers) {
  EXPECT_THROW(KvCache(KvCacheShape{0, 5, 4, 2, 8}), Error);
  EXPECT_THROW(KvCache(KvCacheShape{1, 0, 4, 2, 8}), Error);
  EXPECT_THROW(KvCache(KvCacheShape{1, 5, 0, 2, 8}), Error);
  EXPECT_THROW(KvCache(KvCacheShape{1, 5, 4, -2, 8}), Error);
  EXPECT_THROW(KvCache(KvCacheShape{64, int64_t(1) << 40, 16, 8, 128}), Error);  // overflow
  KvCache kv(KvCacheShape{2, 1, 16, 1, 8});
  EXPECT_EQ(kv.shape().block_size, kDefaultBlockSize);
  EXPECT_THROW(kv.k(2), Error);
  EXPECT_THROW(kv.v(-1), Error);
}

}  // namespace
}  // namespace tandem
