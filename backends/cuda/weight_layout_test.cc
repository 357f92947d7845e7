#include "backends/cuda/weight_layout.h"

#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cuda/numerics.h"
#include "gtest/gtest.h"

namespace shardlm::cuda {
namespace {

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Random quantized rows with sane f16 scales (GGUF layout).
std::vector<uint8_t> RandomQuantRows(DType type, int64_t rows, int64_t cols, uint32_t seed) {
  std::vector<uint8_t> bytes = RandomBytes(RowBytes(type, cols).value() * rows, seed);
  const int64_t block = type == DType::kQ4_0 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  std::mt19937 rng(seed + 1);
  std::uniform_real_distribution<float> d(-0.05f, 0.05f);
  for (size_t off = 0; off < bytes.size(); off += block) {
    const uint16_t h = F32ToF16(d(rng));
    std::memcpy(&bytes[off], &h, 2);
  }
  return bytes;
}

TEST(WeightLayoutTest, Shapes) {
  const WeightLayout q4 = MakeWeightLayout(DType::kQ4_0, 3, 96).value();
  EXPECT_TRUE(q4.quantized);
  EXPECT_EQ(q4.nb, 3);
  EXPECT_EQ(q4.quant_row_bytes, 48);
  EXPECT_EQ(q4.scale_offset, 256);  // 144 quant bytes, aligned up
  EXPECT_EQ(q4.total_bytes, 256 + 3 * 3 * 2);
  const WeightLayout q8 = MakeWeightLayout(DType::kQ8_0, 5, 64).value();
  EXPECT_EQ(q8.quant_row_bytes, 64);
  EXPECT_EQ(q8.scale_offset % 256, 0);
  const WeightLayout f16 = MakeWeightLayout(DType::kF16, 2, 7).value();
  EXPECT_FALSE(f16.quantized);
  EXPECT_EQ(f16.total_bytes, 28);
  EXPECT_FALSE(MakeWeightLayout(DType::kQ4_0, 2, 40).ok());
  EXPECT_FALSE(MakeWeightLayout(DType::kQ6_K, 2, 256).ok());
  EXPECT_FALSE(MakeWeightLayout(DType::kF32, -1, 4).ok());
}

TEST(WeightLayoutTest, PackUnpackRoundTrip) {
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t rows : {1, 3, 17}) {
      const int64_t cols = 160;
      const WeightLayout l = MakeWeightLayout(type, rows, cols).value();
      const std::vector<uint8_t> gguf = RandomBytes(RowBytes(type, cols).value() * rows, rows);
      std::vector<uint8_t> packed(l.total_bytes), back(gguf.size());
      PackWeight(l, gguf.data(), packed.data());
      UnpackWeight(l, packed.data(), back.data());
      EXPECT_EQ(back, gguf) << DTypeName(type) << " rows " << rows;
      if (l.quantized) {
        // Quant rows start 16-byte aligned; the scales are 256-aligned.
        EXPECT_EQ(l.quant_row_bytes % 16, 0);
        EXPECT_EQ(l.scale_offset % 256, 0);
      }
    }
  }
}

// The exact quantized dot as the kernels compute it on the packed layout:
// lane b % 32 takes block b (q4_0) or half-block u % 32 (q8_0), each lane
// sums its RoundFixed terms, then the xor-shuffle tree adds the lanes.
int64_t KernelOrderDot(const WeightLayout& l, const std::vector<uint8_t>& packed, int64_t row,
                       const std::vector<cpu::ActBlockQ8>& act) {
  uint64_t lane_sum[32] = {};
  const uint8_t* q = packed.data() + row * l.quant_row_bytes;
  const uint8_t* scales = packed.data() + l.scale_offset + row * l.nb * 2;
  const int64_t units = l.type == DType::kQ4_0 ? l.nb : 2 * l.nb;
  for (int64_t u = 0; u < units; ++u) {
    const int64_t b = l.type == DType::kQ4_0 ? u : u / 2;
    uint16_t h;
    std::memcpy(&h, scales + b * 2, 2);
    const double scale = BlockScale(F16ToF32(h), act[b].d);
    for (int half = 0; half < 2; ++half) {
      if (l.type == DType::kQ8_0 && half != u % 2) continue;
      int32_t s = 0;
      for (int k = 0; k < 16; ++k) {
        const int e = 16 * half + k;
        const int w = l.type == DType::kQ4_0
                          ? ((half == 0 ? q[b * 16 + k] & 0x0f : q[b * 16 + k] >> 4) - 8)
                          : static_cast<int8_t>(q[b * 32 + e]);
        s += w * act[b].qs[e];
      }
      lane_sum[u % 32] += static_cast<uint64_t>(RoundFixed(scale * static_cast<double>(s)));
    }
  }
  for (int off = 16; off > 0; off >>= 1) {
    uint64_t next[32];
    for (int i = 0; i < 32; ++i) next[i] = lane_sum[i] + lane_sum[i ^ off];
    std::memcpy(lane_sum, next, sizeof(next));
  }
  return static_cast<int64_t>(lane_sum[0]);
}

TEST(WeightLayoutTest, KernelOrderExactDotMatchesCpu) {
  const cpu::KernelTable* k = cpu::ScalarKernels();
  for (DType type : {DType::kQ4_0, DType::kQ8_0}) {
    const int64_t rows = 5, cols = 32 * 71;  // odd block count, > 2 lane rounds
    const std::vector<uint8_t> gguf = RandomQuantRows(type, rows, cols, 7);
    const WeightLayout l = MakeWeightLayout(type, rows, cols).value();
    std::vector<uint8_t> packed(l.total_bytes);
    PackWeight(l, gguf.data(), packed.data());
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    std::vector<float> x(cols);
    for (float& v : x) v = nd(rng);
    std::vector<cpu::ActBlockQ8> act(l.nb);
    k->quantize_act_q8(x.data(), cols, act.data());
    const int64_t row_bytes = RowBytes(type, cols).value();
    for (int64_t r = 0; r < rows; ++r) {
      const void* wr = gguf.data() + r * row_bytes;
      const int64_t want =
          type == DType::kQ4_0
              ? k->dot_q4_0_exact(static_cast<const BlockQ4_0*>(wr), act.data(), l.nb)
              : k->dot_q8_0_exact(static_cast<const BlockQ8_0*>(wr), act.data(), l.nb);
      EXPECT_EQ(KernelOrderDot(l, packed, r, act), want) << DTypeName(type) << " row " << r;
    }
  }
}

}  // namespace
}  // namespace shardlm::cuda
