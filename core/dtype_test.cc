#include "core/dtype.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace shardlm {
namespace {

TEST(DTypeTest, BlockLayoutsMatchGguf) {
  EXPECT_EQ(Info(DType::kF32).type_size, 4);
  EXPECT_EQ(Info(DType::kF16).type_size, 2);
  EXPECT_EQ(Info(DType::kBF16).type_size, 2);
  EXPECT_EQ(Info(DType::kQ8_0).block_size, 32);
  EXPECT_EQ(Info(DType::kQ8_0).type_size, 34);
  EXPECT_EQ(Info(DType::kQ4_0).block_size, 32);
  EXPECT_EQ(Info(DType::kQ4_0).type_size, 18);
  EXPECT_EQ(*RowBytes(DType::kQ4_0, 64), 36u);
  EXPECT_FALSE(RowBytes(DType::kQ8_0, 33).ok());
  EXPECT_FALSE(GetDTypeInfo(99).ok());
}

TEST(DTypeTest, HalfConversionKnownValues) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(1e6f), 0x7c00);
  EXPECT_EQ(F32ToF16(5.9604645e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(F16ToF32(0x3555), 0.333251953125f);
  EXPECT_EQ(F16ToF32(0x0001), 5.9604645e-8f);
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_TRUE(std::isinf(F16ToF32(0x7c00)));
}

TEST(DTypeTest, HalfRoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf / NaN
    EXPECT_EQ(F32ToF16(F16ToF32(h)), h) << h;
  }
}

TEST(DTypeTest, BF16RoundsToNearestEven) {
  EXPECT_EQ(F32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(BF16ToF32(0x3f80), 1.0f);
  for (uint32_t h = 0; h < 0x10000; h += 7) {
    if ((h & 0x7f80) == 0x7f80) continue;
    EXPECT_EQ(F32ToBF16(BF16ToF32(h)), h);
  }
}

TEST(DTypeTest, QuantizedRoundTripIsClose) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(256);
  for (float& v : x) v = dist(rng);
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kF16, DType::kBF16}) {
    std::vector<uint8_t> q(*RowBytes(t, x.size()));
    ASSERT_TRUE(QuantizeRow(t, x.data(), x.size(), q.data()).ok());
    std::vector<float> y(x.size());
    ASSERT_TRUE(DequantizeRow(t, q.data(), x.size(), y.data()).ok());
    const float tol = t == DType::kQ4_0 ? 0.5f : t == DType::kQ8_0 ? 0.03f : 0.02f;
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], y[i], tol) << DTypeName(t) << i;
  }
}

TEST(DTypeTest, Q4_0NibbleOrder) {
  BlockQ4_0 b;
  b.d = F32ToF16(1.0f);
  for (int i = 0; i < 16; ++i) b.qs[i] = static_cast<uint8_t>((i & 0xf) | ((15 - i) << 4));
  float out[32];
  ASSERT_TRUE(DequantizeRow(DType::kQ4_0, &b, 32, out).ok());
  EXPECT_EQ(out[0], -8.0f);
  EXPECT_EQ(out[15], 7.0f);
  EXPECT_EQ(out[16], 7.0f);
  EXPECT_EQ(out[31], -8.0f);
}

}  // namespace
}  // namespace shardlm
