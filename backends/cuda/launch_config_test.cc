#include "backends/cuda/launch_config.h"

#include <vector>

#include "gtest/gtest.h"

namespace shardlm::cuda {
namespace {

TEST(LaunchConfigTest, TokensPerWarp) {
  EXPECT_EQ(TokensPerWarp(1), 1);
  EXPECT_EQ(TokensPerWarp(2), 2);
  EXPECT_EQ(TokensPerWarp(3), 2);
  EXPECT_EQ(TokensPerWarp(7), 4);
  EXPECT_EQ(TokensPerWarp(8), 8);
  EXPECT_EQ(TokensPerWarp(513), 8);
}

// Every (row, token) pair of a matrix product is covered by exactly one
// (block, warp, token slot), for odd sizes too.
TEST(LaunchConfigTest, MatMulCoversEveryRowAndTokenOnce) {
  for (int64_t rows : {1, 7, 8, 9, 31, 33, 257, 4099}) {
    for (int64_t n : {1, 2, 3, 5, 8, 9, 17, 100}) {
      const LaunchDims d = MatMulDims(rows, n);
      ASSERT_TRUE(LaunchDimsValid(d));
      ASSERT_EQ(d.block % kWarpSize, 0);
      const int warps = d.block / kWarpSize;
      const int tok = TokensPerWarp(n);
      std::vector<int> hits(rows * n, 0);
      for (int64_t bx = 0; bx < d.grid_x; ++bx) {
        for (int w = 0; w < warps; ++w) {
          const int64_t row = bx * warps + w;
          if (row >= rows) continue;
          for (int64_t by = 0; by < d.grid_y; ++by) {
            for (int t = 0; t < tok && by * tok + t < n; ++t) ++hits[(by * tok + t) * rows + row];
          }
        }
      }
      for (int h : hits) ASSERT_EQ(h, 1) << rows << " x " << n;
      // No block of warps entirely past the last row.
      EXPECT_LT((d.grid_x - 1) * warps, rows);
    }
  }
}

TEST(LaunchConfigTest, MatMulTokenChunksRespectGridY) {
  const int64_t huge = kMaxGridYZ * 8 + 5;
  EXPECT_EQ(MatMulTokenChunk(huge), kMaxGridYZ * 8);
  EXPECT_TRUE(LaunchDimsValid(MatMulDims(4096, MatMulTokenChunk(huge))));
  EXPECT_EQ(MatMulTokenChunk(5), 5);
}

TEST(LaunchConfigTest, QuantizeOneWarpPerBlock) {
  for (int64_t n : {1, 3, 64}) {
    for (int64_t nb : {1, 7, 128, 449}) {
      const LaunchDims d = QuantizeDims(n, nb);
      ASSERT_TRUE(LaunchDimsValid(d));
      const int64_t warps = d.grid_x * (d.block / kWarpSize);
      EXPECT_GE(warps, n * nb);
      EXPECT_LT(warps - n * nb, d.block / kWarpSize);
    }
  }
}

TEST(LaunchConfigTest, ElementwiseGridStride) {
  for (int64_t count : {1, 255, 256, 257, 1000003}) {
    const LaunchDims d = ElementwiseDims(count);
    ASSERT_TRUE(LaunchDimsValid(d));
    EXPECT_GE(d.grid_x * d.block, std::min<int64_t>(count, kMaxElementwiseBlocks * d.block));
    EXPECT_LT((d.grid_x - 1) * d.block, count);
  }
  const LaunchDims big = ElementwiseDims(int64_t{1} << 40);
  EXPECT_EQ(big.grid_x, kMaxElementwiseBlocks);  // the kernel strides beyond
  EXPECT_EQ(ElementwiseDims(0).grid_x, 1);
}

TEST(LaunchConfigTest, RowsAndAttention) {
  EXPECT_EQ(RowDims(17).grid_x, 17);
  EXPECT_EQ(RowDims(17).block, kRowThreads);
  const LaunchDims a = AttentionDims(32, 7);
  EXPECT_EQ(a.grid_x, 224);  // token * n_heads + head
  EXPECT_TRUE(LaunchDimsValid(a));
  EXPECT_TRUE(LaunchDimsValid(AttentionDims(64, 65536 * 4)));  // beyond grid.y limits
}

TEST(LaunchConfigTest, InvalidShapes) {
  LaunchDims d;
  d.block = 2048;
  EXPECT_FALSE(LaunchDimsValid(d));
  d.block = 256;
  d.grid_y = kMaxGridYZ + 1;
  EXPECT_FALSE(LaunchDimsValid(d));
  d.grid_y = 1;
  d.grid_x = 0;
  EXPECT_FALSE(LaunchDimsValid(d));
}

}  // namespace
}  // namespace shardlm::cuda
