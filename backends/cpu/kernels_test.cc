// Tests of the matrix-vector kernels: every instruction-set path this CPU
// can run against a double-precision reference and, in exact mode, bit for
// bit against the scalar path; and the dispatch. The tests against the
// contract of kernels.h itself are in kernels_contract_test.cc.
#include "backends/cpu/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/kernels_test_util.h"
#include "core/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shardlm::cpu::kernels_testing {
namespace {

using ::testing::HasSubstr;

TEST_P(KernelsTest, TableIsComplete) {
  EXPECT_EQ(std::string(k().isa), GetParam());
  EXPECT_NE(k().quantize_act_q8, nullptr);
  EXPECT_NE(k().dot_q4_0_exact, nullptr);
  EXPECT_NE(k().dot_q8_0_exact, nullptr);
  EXPECT_NE(k().dot_f32_exact, nullptr);
  EXPECT_NE(k().dot_f16_exact, nullptr);
  EXPECT_NE(k().dot_bf16_exact, nullptr);
  EXPECT_NE(k().dot_q4_0_fast, nullptr);
  EXPECT_NE(k().dot_q8_0_fast, nullptr);
  EXPECT_NE(k().dot_f32_fast, nullptr);
  EXPECT_NE(k().dot_f16_fast, nullptr);
  EXPECT_NE(k().dot_bf16_fast, nullptr);
  EXPECT_NE(k().dot_q4_0_exact_rows, nullptr);
  EXPECT_NE(k().dot_q4_0_fast_rows, nullptr);
}

TEST_P(KernelsTest, FloatDotsMatchReference) {
  std::mt19937 rng(1);
  for (FType type : {FType::kF32, FType::kF16, FType::kBF16}) {
    for (int64_t n : kFloatLengths) {
      // Ordinary, large (|w x| up to ~1e6, still below 2^21 so no product
      // reaches the wrap) and mostly-zero rows.
      const float wmax = type == FType::kF16 ? 2000.0f : 1000.0f;
      for (auto [ws, xsc, zf] : {std::tuple{1.0f, 1.0f, 0.1}, std::tuple{wmax, 1000.0f, 0.1},
                                 std::tuple{0.01f, 3.0f, 0.9}}) {
        SCOPED_TRACE(testing::Message() << Name(type) << " n=" << n << " wscale=" << ws);
        const FloatRow w = EncodeFloatRow(type, RandomFloats(rng, n, ws, zf));
        const std::vector<float> x = RandomFloats(rng, n, xsc, zf);
        const std::vector<double> xs = Scaled(x);
        const Ref ref = RefDot(w.Dequantized(), x);

        const int64_t exact = DotExact(k(), w, xs.data(), 0, n);
        // Each product is rounded to a multiple of 2^-30 (error <= 2^-31).
        EXPECT_NEAR(ToDouble(exact), ref.dot, n * Pow2(-31) + 1e-13 * ref.abs);

        const float fast = DotFast(k(), w, x.data());
        EXPECT_NEAR(fast, ref.dot, (n + 2) * Pow2(-24) * ref.abs + 1e-30);
      }
    }
  }
}

TEST_P(KernelsTest, QuantizedDotsMatchReference) {
  std::mt19937 rng(2);
  for (QType type : {QType::kQ8_0, QType::kQ4_0}) {
    for (int64_t nb : kBlockCounts) {
      for (auto [ws, xsc, zf] : {std::tuple{1.0f, 1.0f, 0.1}, std::tuple{100.0f, 50.0f, 0.1},
                                 std::tuple{0.001f, 1.0f, 0.8}}) {
        SCOPED_TRACE(testing::Message() << Name(type) << " nb=" << nb << " wscale=" << ws);
        const int64_t n = nb * kQK;
        const QuantRow w = QuantizeWeights(type, RandomFloats(rng, n, ws, zf));
        std::vector<ActBlockQ8> x(nb);
        const std::vector<float> xf = RandomFloats(rng, n, xsc, zf);
        k().quantize_act_q8(xf.data(), n, x.data());
        const Ref ref = RefDot(w.Dequantized(), DequantizeActs(x));

        // Lane rounding (2 per block, <= 2^-31 each) plus the float rounding
        // of the dequantized reference values (2 x 2^-24 relative).
        const int64_t exact = DotExact(k(), w, x.data(), 0, nb);
        EXPECT_NEAR(ToDouble(exact), ref.dot, 2 * nb * Pow2(-31) + Pow2(-22) * ref.abs);

        const float fast = DotFast(k(), w, x.data());
        EXPECT_NEAR(fast, ref.dot, (nb + 4) * Pow2(-22) * ref.abs + 1e-30);
      }
    }
  }
}

TEST_P(KernelsTest, FloatExactIsBitIdenticalToScalar) {
  std::mt19937 rng(3);
  std::vector<int64_t> lengths = kFloatLengths;
  for (int64_t n = 2; n <= 40; ++n) lengths.push_back(n);
  for (FType type : {FType::kF32, FType::kF16, FType::kBF16}) {
    for (int64_t n : lengths) {
      SCOPED_TRACE(testing::Message() << Name(type) << " n=" << n);
      const std::vector<float> x = RandomFloats(rng, n, 1000.0f);
      const std::vector<double> xs = Scaled(x);
      // Encoded random values, and arbitrary finite bit patterns (subnormal
      // and huge weights whose products wrap).
      for (const FloatRow& w :
           {EncodeFloatRow(type, RandomFloats(rng, n, 50.0f)), RandomBitsRow(rng, type, n)}) {
        EXPECT_EQ(DotExact(k(), w, xs.data(), 0, n), DotExact(scalar(), w, xs.data(), 0, n));
      }
    }
  }
}

TEST_P(KernelsTest, QuantizedExactIsBitIdenticalToScalar) {
  std::mt19937 rng(4);
  std::vector<int64_t> counts = kBlockCounts;
  counts.insert(counts.end(), kMoreBlockCounts.begin(), kMoreBlockCounts.end());
  for (QType type : {QType::kQ8_0, QType::kQ4_0}) {
    for (int64_t nb : counts) {
      SCOPED_TRACE(testing::Message() << Name(type) << " nb=" << nb);
      const int64_t n = nb * kQK;
      // Quantized weights with quantized activations.
      const QuantRow w1 = QuantizeWeights(type, RandomFloats(rng, n, 3.0f));
      std::vector<ActBlockQ8> x1(nb);
      const std::vector<float> xf = RandomFloats(rng, n, 20.0f);
      scalar().quantize_act_q8(xf.data(), n, x1.data());
      EXPECT_EQ(DotExact(k(), w1, x1.data(), 0, nb), DotExact(scalar(), w1, x1.data(), 0, nb));
      // Raw random blocks (full int8 range, odd scales) and activations.
      const QuantRow w2 = RandomQuantRow(rng, type, nb);
      const std::vector<ActBlockQ8> x2 = RandomActs(rng, nb);
      EXPECT_EQ(DotExact(k(), w2, x2.data(), 0, nb), DotExact(scalar(), w2, x2.data(), 0, nb));
      // Huge activation scales: products beyond 2^51 wrap identically.
      const std::vector<ActBlockQ8> x3 = RandomActs(rng, nb, /*huge=*/true);
      EXPECT_EQ(DotExact(k(), w2, x3.data(), 0, nb), DotExact(scalar(), w2, x3.data(), 0, nb));
      // Extremes: every weight -128 (q8_0) / nibble 0 (q4_0), every
      // activation -127 or 127.
      QuantRow w4 = w2;
      for (auto& b : w4.q8) std::memset(b.qs, 0x80, sizeof(b.qs));
      for (auto& b : w4.q4) std::memset(b.qs, 0x00, sizeof(b.qs));
      std::vector<ActBlockQ8> x4 = x2;
      for (auto& b : x4) {
        for (int i = 0; i < kQK; ++i) b.qs[i] = static_cast<int8_t>(i % 3 ? -127 : 127);
      }
      EXPECT_EQ(DotExact(k(), w4, x4.data(), 0, nb), DotExact(scalar(), w4, x4.data(), 0, nb));
    }
  }
}

TEST_P(KernelsTest, QuantizeActIsBitIdenticalToScalar) {
  std::mt19937 rng(5);
  std::vector<std::vector<float>> cases;
  cases.push_back(RandomFloats(rng, 32 * 64, 10.0f));
  cases.push_back(RandomFloats(rng, 32 * 9, 1e-30f, 0.3, false));  // tiny
  cases.push_back(RandomFloats(rng, 32 * 9, 3e38f, 0.3, false));   // huge
  cases.push_back(RandomFloats(rng, 32 * 9, 2e-36f, 0.1, false));  // d subnormal
  cases.push_back(RandomFloats(rng, 32 * 5, 1.0f, 0.97));    // mostly zero
  {
    // All-zero block, all-negative-zero block, and ties at .5: amax = 127
    // gives d = 1, id = 1; amax = 63.5 gives d = 0.5, id = 2.
    std::vector<float> v(32 * 4, 0.0f);
    for (int i = 32; i < 64; ++i) v[i] = -0.0f;
    v[64] = 127.0f;
    for (int i = 1; i < 32; ++i) v[64 + i] = (i - 16) + 0.5f;
    v[96] = -63.5f;
    for (int i = 1; i < 32; ++i) v[96 + i] = (i - 16) * 0.25f;
    cases.push_back(v);
  }
  {
    // Subnormal inputs so small that d underflows to zero (amax <= 63 *
    // 2^-149), a block of the largest floats, and one huge value among tiny.
    std::vector<float> v(32 * 3);
    for (int i = 0; i < 32; ++i) v[i] = std::ldexp(static_cast<float>(i % 64 - 31), -149);
    for (int i = 0; i < 32; ++i) v[32 + i] = (i & 1 ? -1 : 1) * std::numeric_limits<float>::max();
    for (int i = 0; i < 32; ++i) v[64 + i] = i == 7 ? 1e30f : 1e-6f * i;
    cases.push_back(v);
  }
  {
    // Near-ties: values within an ulp of (k + 0.5) / id, so that any other
    // way of computing id (127 / amax) or x * id (fused, reordered) shows.
    std::vector<float> v(32 * 256);
    std::uniform_real_distribution<float> amax_dist(0.01f, 100.0f);
    std::uniform_int_distribution<int> k_dist(-126, 125), ulp(-1, 1);
    for (int b = 0; b < 256; ++b) {
      const float amax = amax_dist(rng);
      const float id = 1.0f / (amax / 127.0f);
      v[32 * b] = b & 1 ? -amax : amax;
      for (int i = 1; i < 32; ++i) {
        float t = static_cast<float>((k_dist(rng) + 0.5) / id);
        const int u = ulp(rng);
        if (u != 0) t = std::nextafter(t, u > 0 ? 1e30f : -1e30f);
        v[32 * b + i] = std::fabs(t) <= amax ? t : 0.0f;
      }
    }
    cases.push_back(v);
  }
  {
    // Degenerate blocks (kernels_scalar.cc defines them: out-of-range or NaN
    // products become -127): amax so small that 1 / d overflows, a NaN (not
    // counted in amax), an infinity (d = inf, id = 0), a leading NaN.
    std::vector<float> v(32 * 4, 1.0f);
    for (int i = 0; i < 32; ++i) v[i] = (i - 16) * 1e-38f;
    v[32 + 3] = std::numeric_limits<float>::quiet_NaN();
    v[64 + 5] = -std::numeric_limits<float>::infinity();
    v[96] = std::numeric_limits<float>::quiet_NaN();
    cases.push_back(v);
  }
  for (size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE(testing::Message() << "case " << c);
    const std::vector<float>& v = cases[c];
    const int64_t nb = v.size() / kQK;
    std::vector<ActBlockQ8> got(nb), want(nb);
    std::memset(got.data(), 0x5a, nb * sizeof(ActBlockQ8));
    std::memset(want.data(), 0xa5, nb * sizeof(ActBlockQ8));
    k().quantize_act_q8(v.data(), v.size(), got.data());
    scalar().quantize_act_q8(v.data(), v.size(), want.data());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), nb * sizeof(ActBlockQ8)), 0);
    for (int64_t b = 0; b < nb; ++b) {
      uint32_t gd, wd;
      std::memcpy(&gd, &got[b].d, 4);
      std::memcpy(&wd, &want[b].d, 4);
      ASSERT_EQ(gd, wd) << "block " << b;
      for (int i = 0; i < kQK; ++i) {
        ASSERT_EQ(got[b].qs[i], want[b].qs[i]) << b << ":" << i;
        // The SIMD dots rely on activations never being -128.
        ASSERT_NE(got[b].qs[i], -128) << b << ":" << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelsTest, ::testing::ValuesIn(SupportedIsas()), IsaName);

// ---------------------------------------------------------------------------
// Dispatch.

TEST(DispatchTest, AutoSelectsTheBestSupportedPath) {
  const std::vector<std::string> isas = SupportedIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.back(), "scalar");
  auto t = SelectKernels("auto");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_NE(*t, nullptr);
  EXPECT_EQ(std::string((*t)->isa), isas.front());
}

TEST(DispatchTest, EveryListedPathSelectsItsTable) {
  for (const std::string& isa : SupportedIsas()) {
    EXPECT_TRUE(CpuSupports(isa)) << isa;
    auto t = SelectKernels(isa);
    ASSERT_TRUE(t.ok()) << isa << ": " << t.status();
    ASSERT_NE(*t, nullptr);
    EXPECT_EQ(std::string((*t)->isa), isa);
  }
  EXPECT_TRUE(CpuSupports("scalar"));
  EXPECT_EQ(*SelectKernels("scalar"), ScalarKernels());
}

TEST(DispatchTest, UnknownNameIsInvalidArgument) {
  auto t = SelectKernels("bogus");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("bogus"));
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("avx2"));
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("scalar"));
  EXPECT_FALSE(CpuSupports("bogus"));
  EXPECT_EQ(SelectKernels("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DispatchTest, UnavailablePathIsFailedPrecondition) {
  const std::vector<std::string> isas = SupportedIsas();
  for (const char* isa : {"avx512", "avx2"}) {
    if (std::find(isas.begin(), isas.end(), isa) != isas.end()) continue;
    auto t = SelectKernels(isa);
    ASSERT_FALSE(t.ok()) << isa;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition) << t.status();
  }
}

TEST(DispatchTest, PathsAreListedBestFirst) {
  const std::vector<std::string> order = {"avx512", "avx2", "scalar"};
  const std::vector<std::string> isas = SupportedIsas();
  size_t pos = 0;
  for (const std::string& isa : isas) {
    while (pos < order.size() && order[pos] != isa) ++pos;
    ASSERT_LT(pos, order.size()) << isa << " out of order";
  }
  if (CpuSupports("avx2")) {
    EXPECT_NE(std::find(isas.begin(), isas.end(), "avx2"), isas.end());
  }
}

}  // namespace
}  // namespace shardlm::cpu::kernels_testing
