// Tests of the kernels against the contract of kernels.h itself, on every
// instruction-set path this CPU can run: an independent transcription of
// the formula, values worked out by hand, exact sums that do not depend on
// how a row is split, and the multi-row q4_0 dots against the single-row
// ones. The other kernel tests are in kernels_test.cc.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu/kernels_test_util.h"
#include "core/dtype.h"
#include "gtest/gtest.h"

namespace shardlm::cpu::kernels_testing {
namespace {

// int64 addition that wraps like the kernels' sums.
int64_t Wrap(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

// ---------------------------------------------------------------------------
// An independent transcription of the contract in kernels.h.

int64_t ContractFloat(const std::vector<float>& w, const std::vector<double>& xs) {
  uint64_t sum = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    sum += static_cast<uint64_t>(RoundFixed(static_cast<double>(w[i]) * xs[i]));
  }
  return static_cast<int64_t>(sum);
}

int WeightInt(const QuantRow& w, int64_t b, int i) {
  if (w.type == QType::kQ8_0) return w.q8[b].qs[i];
  const uint8_t byte = w.q4[b].qs[i % 16];
  return (i < 16 ? (byte & 0x0f) : (byte >> 4)) - 8;
}

uint16_t WeightScaleBits(const QuantRow& w, int64_t b) {
  return w.type == QType::kQ8_0 ? w.q8[b].d : w.q4[b].d;
}

int64_t ContractQuant(const QuantRow& w, const std::vector<ActBlockQ8>& x) {
  uint64_t sum = 0;
  for (int64_t b = 0; b < w.nb(); ++b) {
    const double scale = static_cast<double>(F16ToF32(WeightScaleBits(w, b))) *
                         (static_cast<double>(x[b].d) * Pow2(30));
    for (int h = 0; h < 2; ++h) {
      int s = 0;
      for (int i = 16 * h; i < 16 * h + 16; ++i) s += WeightInt(w, b, i) * x[b].qs[i];
      sum += static_cast<uint64_t>(RoundFixed(scale * s));
    }
  }
  return static_cast<int64_t>(sum);
}

// How far two fast q4_0 dots of `row` may differ by float rounding order:
// 1e-5 of the sum of the terms' magnitudes.
float FastQ4Tolerance(const BlockQ4_0* row, const std::vector<ActBlockQ8>& x, int64_t nb) {
  float mag = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    float t = 0.0f;
    for (int i = 0; i < kQK / 2; ++i) {
      t += std::fabs(static_cast<float>((row[b].qs[i] & 15) - 8) * x[b].qs[i]) +
           std::fabs(static_cast<float>((row[b].qs[i] >> 4) - 8) * x[b].qs[i + 16]);
    }
    mag += t * std::fabs(F16ToF32(row[b].d) * x[b].d);
  }
  return 1e-5f * mag + 1e-30f;
}

// The multi-row q4_0 dots give each row's single-row result: exact bit for
// bit (against the scalar path too), fast up to float rounding.
TEST_P(KernelsTest, Q4MultiRowDotsMatchSingleRow) {
  std::mt19937 rng(11);
  std::vector<int64_t> counts = kBlockCounts;
  counts.insert(counts.end(), kMoreBlockCounts.begin(), kMoreBlockCounts.end());
  for (int64_t nb : counts) {
    for (int rows : {1, 2, 3, 4, 5, 7, 8, 9, 13}) {
      SCOPED_TRACE(testing::Message() << "nb=" << nb << " rows=" << rows);
      // Rows back to back, as in a weight matrix.
      const QuantRow w = RandomQuantRow(rng, QType::kQ4_0, nb * rows);
      std::vector<BlockQ4_0> wb = w.q4;
      if (rows > 2) wb[nb + nb / 2].d = 0x7c00;  // an infinite scale in row 1
      for (bool huge : {false, true}) {
        const std::vector<ActBlockQ8> x = RandomActs(rng, nb, huge);
        std::vector<int64_t> got(rows);
        std::vector<float> gotf(rows);
        k().dot_q4_0_exact_rows(wb.data(), nb * sizeof(BlockQ4_0), rows, x.data(), nb, got.data());
        k().dot_q4_0_fast_rows(wb.data(), nb * sizeof(BlockQ4_0), rows, x.data(), nb, gotf.data());
        for (int r = 0; r < rows; ++r) {
          const BlockQ4_0* row = wb.data() + r * nb;
          EXPECT_EQ(got[r], k().dot_q4_0_exact(row, x.data(), nb)) << "row " << r;
          EXPECT_EQ(got[r], scalar().dot_q4_0_exact(row, x.data(), nb)) << "row " << r;
          if (huge || (rows > 2 && r == 1)) continue;
          const float want = k().dot_q4_0_fast(row, x.data(), nb);
          EXPECT_NEAR(gotf[r], want, FastQ4Tolerance(row, x, nb)) << "row " << r;
        }
      }
    }
  }
}

// The q4_0x8 layout round-trips, and the q4_0x8 multi-row dots of a path
// that has them give what the plain rows give: exact bit for bit (against
// the scalar path), fast up to float rounding. Block counts with and
// without a plain tail (nb % 8), with an infinite scale in a group and in
// a tail.
TEST_P(KernelsTest, Q4x8MultiRowDotsMatchPlainRows) {
  std::mt19937 rng(13);
  for (int64_t nb : {1, 7, 8, 9, 15, 16, 24, 31, 64, 67, 256}) {
    for (int64_t rows : {1, 3, 4, 5, 8, 11}) {
      const QuantRow all = RandomQuantRow(rng, QType::kQ4_0, nb * rows);
      std::vector<uint8_t> packed(rows * nb * sizeof(BlockQ4_0));
      RepackQ4_0x8Rows(all.q4.data(), rows, nb, packed.data());
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<BlockQ4_0> back(nb);
        UnpackQ4_0x8Row(packed.data(), rows, r, nb, back.data());
        ASSERT_EQ(std::memcmp(back.data(), all.q4.data() + r * nb, nb * sizeof(BlockQ4_0)), 0)
            << "nb=" << nb << " rows=" << rows << " row " << r;
      }
      // A run from a whole tile on is that part of the longer run.
      if (rows > kQ4x8TileRows) {
        const size_t skip = kQ4x8TileRows * nb * sizeof(BlockQ4_0);
        std::vector<uint8_t> part(packed.size() - skip);
        RepackQ4_0x8Rows(all.q4.data() + kQ4x8TileRows * nb, rows - kQ4x8TileRows, nb, part.data());
        ASSERT_EQ(std::memcmp(part.data(), packed.data() + skip, part.size()), 0) << nb;
      }
    }
  }
  if (k().dot_q4_0x8_fast_rows == nullptr) {
    EXPECT_EQ(k().dot_q4_0x8_exact_rows, nullptr);
    GTEST_SKIP() << k().isa << " keeps q4_0 rows plain";
  }
  for (int64_t nb : {1, 7, 8, 9, 16, 17, 64, 71, 256}) {
    for (int rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 11}) {
      SCOPED_TRACE(testing::Message() << "nb=" << nb << " rows=" << rows);
      const QuantRow w = RandomQuantRow(rng, QType::kQ4_0, nb * rows);
      std::vector<BlockQ4_0> wb = w.q4;
      if (rows > 2) wb[nb + nb / 2].d = 0x7c00;  // an infinite scale in row 1
      if (rows > 3) wb[2 * nb + nb - 1].d = 0xfc00;  // -inf in row 2's last block
      const size_t stride = nb * sizeof(BlockQ4_0);
      std::vector<uint8_t> packed(rows * stride);
      RepackQ4_0x8Rows(wb.data(), rows, nb, packed.data());
      for (bool huge : {false, true}) {
        const std::vector<ActBlockQ8> x = RandomActs(rng, nb, huge);
        std::vector<uint8_t> act(k().q4_0x8_act_bytes(nb) + 1);
        k().prepare_q4_0x8_act(x.data(), nb, act.data());
        std::vector<int64_t> got(rows), want(rows);
        std::vector<float> gotf(rows), wantf(rows);
        k().dot_q4_0x8_exact_rows(packed.data(), stride, rows, act.data(), x.data(), nb, got.data());
        k().dot_q4_0x8_fast_rows(packed.data(), stride, rows, act.data(), x.data(), nb, gotf.data());
        scalar().dot_q4_0_exact_rows(wb.data(), stride, rows, x.data(), nb, want.data());
        k().dot_q4_0_fast_rows(wb.data(), stride, rows, x.data(), nb, wantf.data());
        for (int r = 0; r < rows; ++r) {
          EXPECT_EQ(got[r], want[r]) << "row " << r;
          if (huge || (rows > 2 && r == 1) || (rows > 3 && r == 2)) continue;
          EXPECT_NEAR(gotf[r], wantf[r], FastQ4Tolerance(wb.data() + r * nb, x, nb))
              << "row " << r;
        }
      }
    }
  }
}

// The contract of quantize_act_q8, checked on the scalar definition by hand.
TEST(QuantizeActContract, ScalarFollowsDefinition) {
  std::vector<float> v(64);
  v[0] = 127.0f;  // d = 1, id = 1
  const float ties[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f, -3.5f, -0.0f, 126.5f};
  const int8_t want[] = {0, 2, 2, 0, -2, -2, 4, -4, 0, 126};
  for (int i = 0; i < 10; ++i) v[1 + i] = ties[i];
  // Second block all zero.
  std::vector<ActBlockQ8> out(2);
  ScalarKernels()->quantize_act_q8(v.data(), 64, out.data());
  EXPECT_EQ(out[0].d, 1.0f);
  EXPECT_EQ(out[0].qs[0], 127);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(out[0].qs[1 + i], want[i]) << ties[i];
  EXPECT_EQ(out[1].d, 0.0f);
  for (int i = 0; i < kQK; ++i) EXPECT_EQ(out[1].qs[i], 0);

  // General blocks, many values within an ulp of a tie: d = amax / 127,
  // q = nearbyint(x * (1 / d)).
  std::mt19937 rng(6);
  std::uniform_int_distribution<int> k_dist(-126, 125), ulp(-1, 1);
  for (int blk = 0; blk < 200; ++blk) {
    std::vector<float> x = RandomFloats(rng, 32, 3.7f);
    float amax = 0;
    for (float f : x) amax = std::max(amax, std::fabs(f));
    if (blk % 2 == 1 && amax > 0) {
      const float id = 1.0f / (amax / 127.0f);
      for (int i = 0; i < 32; ++i) {
        if (std::fabs(x[i]) == amax) continue;
        float t = static_cast<float>((k_dist(rng) + 0.5) / id);
        if (int u = ulp(rng)) t = std::nextafter(t, u > 0 ? 1e30f : -1e30f);
        if (std::fabs(t) < amax) x[i] = t;
      }
    }
    ActBlockQ8 b;
    ScalarKernels()->quantize_act_q8(x.data(), 32, &b);
    const float d = amax / 127.0f;
    ASSERT_EQ(b.d, d);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < kQK; ++i) {
      ASSERT_EQ(b.qs[i], static_cast<int>(std::nearbyint(x[i] * id))) << blk << ":" << i;
    }
  }
}

TEST_P(KernelsTest, FloatExactIsOrderIndependent) {
  std::mt19937 rng(7);
  for (FType type : {FType::kF32, FType::kF16, FType::kBF16}) {
    for (int64_t n : {33, 100, 257, 4096}) {
      SCOPED_TRACE(testing::Message() << Name(type) << " n=" << n);
      const FloatRow w = EncodeFloatRow(type, RandomFloats(rng, n, 30.0f));
      const std::vector<double> xs = Scaled(RandomFloats(rng, n, 30.0f));
      const int64_t total = DotExact(k(), w, xs.data(), 0, n);
      EXPECT_EQ(total, ContractFloat(w.Dequantized(), xs));
      std::vector<int64_t> splits;
      if (n <= 257) {
        for (int64_t s = 0; s <= n; ++s) splits.push_back(s);
      } else {
        std::uniform_int_distribution<int64_t> u(0, n);
        for (int i = 0; i < 50; ++i) splits.push_back(u(rng));
      }
      for (int64_t s : splits) {
        ASSERT_EQ(total, DotExact(k(), w, xs.data(), 0, s) + DotExact(k(), w, xs.data(), s, n))
            << "split at " << s;
        // Mixed paths: the first part here, the rest on the scalar path.
        ASSERT_EQ(total,
                  DotExact(k(), w, xs.data(), 0, s) + DotExact(scalar(), w, xs.data(), s, n));
      }
      // Three-way split in the reverse order.
      const int64_t a = n / 3, b = 2 * n / 3 + 1;
      EXPECT_EQ(total, DotExact(k(), w, xs.data(), b, n) + DotExact(k(), w, xs.data(), a, b) +
                           DotExact(k(), w, xs.data(), 0, a));
    }
  }
}

TEST_P(KernelsTest, QuantizedExactIsOrderIndependent) {
  std::mt19937 rng(8);
  for (QType type : {QType::kQ8_0, QType::kQ4_0}) {
    for (int64_t nb : {7, 64, 129}) {
      SCOPED_TRACE(testing::Message() << Name(type) << " nb=" << nb);
      const QuantRow w = RandomQuantRow(rng, type, nb);
      const std::vector<ActBlockQ8> x = RandomActs(rng, nb);
      const int64_t total = DotExact(k(), w, x.data(), 0, nb);
      EXPECT_EQ(total, ContractQuant(w, x));
      for (int64_t s = 0; s <= nb; ++s) {
        ASSERT_EQ(total,
                  Wrap(DotExact(k(), w, x.data(), 0, s), DotExact(k(), w, x.data(), s, nb)))
            << "split at " << s;
        ASSERT_EQ(total,
                  Wrap(DotExact(scalar(), w, x.data(), 0, s), DotExact(k(), w, x.data(), s, nb)))
            << "split at " << s;
      }
      // One block at a time, last to first.
      int64_t sum = 0;
      for (int64_t b = nb - 1; b >= 0; --b) sum = Wrap(sum, DotExact(k(), w, x.data(), b, b + 1));
      EXPECT_EQ(total, sum);
    }
  }
}

// Exact dots against values worked out by hand from the formula.
TEST_P(KernelsTest, ExactMatchesHandComputedContract) {
  // Float: RoundFixed(w * x * 2^30) with ties to even.
  {
    const std::vector<float> w = {1.0f, 0x1p-31f, 3 * 0x1p-31f, 5 * 0x1p-31f, -0x1p-31f,
                                  -3 * 0x1p-31f, 0.75f, 2.0f};
    const std::vector<float> x = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, -0.5f, 0.0f};
    // 2^30, 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -1.5 -> -2, -0.375 * 2^30, 0.
    const int64_t want[] = {1073741824, 0, 2, 2, 0, -2, -402653184, 0};
    const std::vector<double> xs = Scaled(x);
    int64_t total = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      EXPECT_EQ(k().dot_f32_exact(&w[i], &xs[i], 1), want[i]) << i;
      EXPECT_EQ(RoundFixed(static_cast<double>(w[i]) * xs[i]), want[i]) << i;
      total += want[i];
    }
    EXPECT_EQ(k().dot_f32_exact(w.data(), xs.data(), w.size()), total);
    // f16 / bf16 of the exactly representable values.
    const uint16_t h[] = {F32ToF16(1.0f), F32ToF16(0.75f)};
    const uint16_t bf[] = {F32ToBF16(1.0f), F32ToBF16(0.75f)};
    const double xs2[] = {3.0 * kFixedScale, -0.5 * kFixedScale};
    const int64_t want2 = 3 * 1073741824LL - 402653184LL;
    EXPECT_EQ(k().dot_f16_exact(h, xs2, 2), want2);
    EXPECT_EQ(k().dot_bf16_exact(bf, xs2, 2), want2);
  }
  // Quantized: d_w = 2^-24 (the smallest f16 subnormal, bits 0x0001) and
  // d_x = 2^-10 give scale = 2^-4, so a half-block sum s contributes
  // RoundFixed(s / 16). With w = 1 on a few elements (q as listed):
  //   half 0: q = 8, 16 at elements 0, 4  -> s = 24  -> 2 (tie 1.5 -> 2);
  //   half 1: q = 40, -24 at elements 16, 28 -> s = 16 -> 1.
  // Rounding per 4-element group (the old lanes) would give 0 + 1 + 2 - 2
  // = 1 instead of 3; rounding the whole block, RoundFixed(40 / 16) = 2.
  {
    const int elems[4] = {0, 4, 16, 28};
    const int qs[4] = {8, 16, 40, -24};
    const int64_t want_block = 2 + 1;
    BlockQ8_0 w8[3];
    BlockQ4_0 w4[3];
    ActBlockQ8 x[3];
    for (int b = 0; b < 3; ++b) {
      w8[b].d = 0x0001;
      w4[b].d = 0x0001;
      std::memset(w8[b].qs, 0, sizeof(w8[b].qs));
      std::memset(w4[b].qs, 0x88, sizeof(w4[b].qs));  // every nibble 8 -> weight 0
      x[b].d = 0x1p-10f;
      for (int i = 0; i < kQK; ++i) x[b].qs[i] = 99;  // times weight 0
      for (int k = 0; k < 4; ++k) {
        const int e = elems[k];
        x[b].qs[e] = static_cast<int8_t>(qs[k]);
        w8[b].qs[e] = 1;
        // Element e -> weight 9 - 8 = 1 (low nibble for e < 16, high after).
        if (e < 16) {
          w4[b].qs[e] = static_cast<uint8_t>((w4[b].qs[e] & 0xf0) | 9);
        } else {
          w4[b].qs[e - 16] = static_cast<uint8_t>((w4[b].qs[e - 16] & 0x0f) | 0x90);
        }
      }
    }
    EXPECT_EQ(k().dot_q8_0_exact(w8, x, 1), want_block);
    EXPECT_EQ(k().dot_q4_0_exact(w4, x, 1), want_block);
    EXPECT_EQ(k().dot_q8_0_exact(w8, x, 3), 3 * want_block);
    EXPECT_EQ(k().dot_q4_0_exact(w4, x, 3), 3 * want_block);
    int64_t rows_out[3];
    k().dot_q4_0_exact_rows(w4, sizeof(BlockQ4_0), 3, x, 1, rows_out);
    for (int r = 0; r < 3; ++r) EXPECT_EQ(rows_out[r], want_block) << r;
    // The groupings that the contract does not use give other totals.
    EXPECT_EQ(RoundFixed(8.0 / 16) + RoundFixed(16.0 / 16) + RoundFixed(40.0 / 16) +
                  RoundFixed(-24.0 / 16),
              1);
    EXPECT_EQ(RoundFixed(40.0 / 16), 2);
  }
  // The largest half-block sums: a q8_0 half of -128 weights against 127
  // activations, s = 16 * -128 * 127 = -260096, with a 35-bit scale
  // (f16 and float with full mantissas): the product is exact, so every
  // path gives the literal contract value.
  {
    BlockQ8_0 w8[1];
    ActBlockQ8 x[1];
    w8[0].d = 0x3bff;  // f16 0.99951171875 (11 significant bits)
    x[0].d = 1.0f - 0x1p-24f;  // 24 significant bits
    for (int i = 0; i < kQK; ++i) {
      w8[0].qs[i] = -128;
      x[0].qs[i] = static_cast<int8_t>(i < 16 ? 127 : -127);
    }
    const double scale = static_cast<double>(F16ToF32(w8[0].d)) *
                         (static_cast<double>(x[0].d) * kFixedScale);
    const int64_t want = RoundFixed(scale * -260096.0) + RoundFixed(scale * 260096.0);
    EXPECT_EQ(want, 0);
    EXPECT_EQ(k().dot_q8_0_exact(w8, x, 1), want);
    x[0].qs[0] = 126;  // s_b0 = -260096 + 128, s_b1 = 260096
    const int64_t want2 = RoundFixed(scale * -259968.0) + RoundFixed(scale * 260096.0);
    EXPECT_EQ(k().dot_q8_0_exact(w8, x, 1), want2);
  }
  // Random data against the test's own transcription of the formula.
  std::mt19937 rng(9);
  for (QType type : {QType::kQ8_0, QType::kQ4_0}) {
    for (int64_t nb : {1, 5, 33}) {
      const QuantRow w = RandomQuantRow(rng, type, nb);
      const std::vector<ActBlockQ8> x = RandomActs(rng, nb);
      EXPECT_EQ(DotExact(k(), w, x.data(), 0, nb), ContractQuant(w, x)) << Name(type) << nb;
    }
  }
  for (FType type : {FType::kF32, FType::kF16, FType::kBF16}) {
    for (int64_t n : {1, 13, 64, 301}) {
      const FloatRow w = RandomBitsRow(rng, type, n);
      const std::vector<double> xs = Scaled(RandomFloats(rng, n, 10.0f));
      EXPECT_EQ(DotExact(k(), w, xs.data(), 0, n), ContractFloat(w.Dequantized(), xs))
          << Name(type) << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelsTest, ::testing::ValuesIn(SupportedIsas()), IsaName);

}  // namespace
}  // namespace shardlm::cpu::kernels_testing
