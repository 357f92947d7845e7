// The host twins of the device numerics against the CPU backend's
// definitions (std::exp, cpu::RoundFixed, quantize_act_q8).
#include "backends/cuda/numerics.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cuda/exp_table.h"
#include "gtest/gtest.h"

namespace shardlm::cuda {
namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(NumericsTest, ExpTableKnownEntries) {
  const auto& t = ExpTable();
  EXPECT_EQ(t[0], 0x3ff0000000000000ull);
  EXPECT_EQ(t[1], 0x3fefd9b0d3158574ull);
  EXPECT_EQ(t[16], 0x3feea09e667f3bcdull);  // sqrt(2)
  EXPECT_EQ(t[31], 0x3fefd0765b6e4540ull);
}

// GlibcExpf equals std::exp bit for bit. A stride of 251 samples ~17M of the
// 2^32 floats (every exponent and sign, NaN/inf/subnormal included); the
// whole range was checked once (0 mismatches against glibc 2.36 with FMA).
TEST(NumericsTest, GlibcExpfMatchesStdExp) {
  const uint64_t* table = ExpTable().data();
  int64_t mismatches = 0;
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 251) {
    const float x = FromBits(static_cast<uint32_t>(u));
    const float want = std::exp(x), got = GlibcExpf(x, table);
    if (Bits(want) != Bits(got) && !(std::isnan(want) && std::isnan(got))) {
      if (++mismatches < 5) ADD_FAILURE() << "x=" << x << " want " << want << " got " << got;
    }
  }
  EXPECT_EQ(mismatches, 0);
  for (float x : {0.0f, -0.0f, 1.0f, -1.0f, 88.7f, -103.9f, -104.0f, 89.0f, INFINITY, -INFINITY}) {
    EXPECT_EQ(Bits(GlibcExpf(x, table)), Bits(std::exp(x))) << x;
  }
  EXPECT_TRUE(std::isnan(GlibcExpf(NAN, table)));
}

// The softmax and SiLU arguments of real runs: small magnitudes, densely.
TEST(NumericsTest, GlibcExpfDenseNearZero) {
  const uint64_t* table = ExpTable().data();
  for (uint32_t u = Bits(-20.0f); u > Bits(-20.0f) - (1u << 22); --u) {
    const float x = FromBits(u);
    ASSERT_EQ(Bits(GlibcExpf(x, table)), Bits(std::exp(x))) << x;
  }
}

TEST(NumericsTest, RoundFixedMatchesCpu) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> d(-1e15, 1e15);
  for (int i = 0; i < 100000; ++i) {
    const double p = d(rng) / (1 << (i % 40));
    ASSERT_EQ(RoundFixed(p), cpu::RoundFixed(p)) << p;
  }
  for (double p : {0.5, 1.5, 2.5, -0.5, -1.5, 3e16, -3e16, 1e300}) {
    EXPECT_EQ(RoundFixed(p), cpu::RoundFixed(p)) << p;
  }
  EXPECT_EQ(FixedToFloatHD(int64_t{3} << 29), cpu::FromFixed(int64_t{3} << 29));
  EXPECT_EQ(WrapAdd(INT64_MAX, 1), INT64_MIN);
}

// The per-lane quantization of the device kernel (amax, d, 1/d, RoundToInt8)
// equals the CPU's quantize_act_q8, degenerate inputs included.
TEST(NumericsTest, ActivationQuantizationMatchesCpu) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> x(32 * 64);
  for (float& v : x) v = nd(rng);
  x[5] = NAN;
  x[40] = INFINITY;
  for (int i = 64; i < 96; ++i) x[i] = 0.0f;
  for (int i = 96; i < 128; ++i) x[i] = 1e-42f;  // 1/d overflows
  x[130] = -0.0f;
  std::vector<cpu::ActBlockQ8> want(64);
  cpu::ScalarKernels()->quantize_act_q8(x.data(), x.size(), want.data());
  for (int b = 0; b < 64; ++b) {
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) {
      const float a = std::fabs(x[b * 32 + i]);
      const float m = a > 0.0f ? a : 0.0f;
      amax = m > amax ? m : amax;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    ASSERT_EQ(Bits(d), Bits(want[b].d)) << b;
    for (int i = 0; i < 32; ++i) {
      ASSERT_EQ(RoundToInt8(x[b * 32 + i] * id), want[b].qs[i]) << b << " " << i;
    }
  }
}

}  // namespace
}  // namespace shardlm::cuda
