// Tests of the matrix-vector kernels: every instruction-set path this CPU
// can run against a double-precision reference, bit for bit against the
// scalar path in exact mode, and against the contract of kernels.h itself.
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

#include "core/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shardlm::cpu {
namespace {

using ::testing::HasSubstr;

const std::vector<int64_t> kFloatLengths = {1, 7, 8, 15, 16, 31, 32, 33, 100, 257, 4096};
const std::vector<int64_t> kBlockCounts = {1, 2, 3, 7, 8, 64, 129};
// Extra block counts that exercise every remainder of a 4-block unroll.
const std::vector<int64_t> kMoreBlockCounts = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 64, 129};

double Pow2(int e) { return std::ldexp(1.0, e); }

// int64 addition that wraps like the kernels' sums.
int64_t Wrap(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

// ---------------------------------------------------------------------------
// Test data.

// Uniform values in [-scale, scale]; about `zero_frac` of them are zero (some
// negative zero) and, with `halves`, a few are small integers or exact halves.
std::vector<float> RandomFloats(std::mt19937& rng, int64_t n, float scale,
                                double zero_frac = 0.1, bool halves = true) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_real_distribution<double> p(0.0, 1.0);
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) {
    const double r = p(rng);
    if (r < zero_frac * 0.5) {
      v[i] = 0.0f;
    } else if (r < zero_frac) {
      v[i] = -0.0f;
    } else if (halves && r < zero_frac + 0.05) {
      v[i] = std::round(u(rng) * 8.0f) * 0.5f;
    } else {
      v[i] = u(rng) * scale;
    }
  }
  return v;
}

std::vector<double> Scaled(const std::vector<float>& x) {
  std::vector<double> xs(x.size());
  for (size_t i = 0; i < x.size(); ++i) xs[i] = static_cast<double>(x[i]) * kFixedScale;
  return xs;
}

enum class FType { kF32, kF16, kBF16 };
const char* Name(FType t) { return t == FType::kF32 ? "f32" : t == FType::kF16 ? "f16" : "bf16"; }
DType ToDType(FType t) {
  return t == FType::kF32 ? DType::kF32 : t == FType::kF16 ? DType::kF16 : DType::kBF16;
}

// A float-typed weight row: f32 values, or f16/bf16 bits in `bits`.
struct FloatRow {
  FType type;
  std::vector<float> f32;
  std::vector<uint16_t> bits;
  int64_t n() const { return type == FType::kF32 ? f32.size() : bits.size(); }
  const void* data() const {
    return type == FType::kF32 ? static_cast<const void*>(f32.data()) : bits.data();
  }
  // The row as floats, via DequantizeRow.
  std::vector<float> Dequantized() const {
    std::vector<float> out(n());
    EXPECT_TRUE(DequantizeRow(ToDType(type), data(), n(), out.data()).ok());
    return out;
  }
};

FloatRow EncodeFloatRow(FType type, const std::vector<float>& v) {
  FloatRow r{type, {}, {}};
  if (type == FType::kF32) {
    r.f32 = v;
  } else {
    r.bits.resize(v.size());
    EXPECT_TRUE(QuantizeRow(ToDType(type), v.data(), v.size(), r.bits.data()).ok());
  }
  return r;
}

// Arbitrary finite bit patterns (subnormals, huge values, both zeros).
FloatRow RandomBitsRow(std::mt19937& rng, FType type, int64_t n) {
  FloatRow r{type, {}, {}};
  std::uniform_int_distribution<uint32_t> u;
  if (type == FType::kF32) {
    r.f32.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t b;
      do {
        b = u(rng);
        // Keep |w| < 2^40 mostly so products stay in the non-wrapping range,
        // but allow some huge values to exercise the wrap.
        if ((b >> 23 & 0xff) > 127 + 40 && (b & 7) != 0) b &= ~(0x7fu << 24);
      } while ((b >> 23 & 0xff) == 0xff);
      std::memcpy(&r.f32[i], &b, 4);
    }
  } else {
    r.bits.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      uint16_t b;
      if (type == FType::kF16) {
        do b = static_cast<uint16_t>(u(rng)); while ((b >> 10 & 0x1f) == 0x1f);
      } else {
        do b = static_cast<uint16_t>(u(rng)); while ((b >> 7 & 0xff) == 0xff);
      }
      r.bits[i] = b;
    }
  }
  return r;
}

int64_t DotExact(const KernelTable& k, const FloatRow& w, const double* xs, int64_t begin,
                 int64_t end) {
  const int64_t n = end - begin;
  switch (w.type) {
    case FType::kF32:
      return k.dot_f32_exact(w.f32.data() + begin, xs + begin, n);
    case FType::kF16:
      return k.dot_f16_exact(w.bits.data() + begin, xs + begin, n);
    case FType::kBF16:
      return k.dot_bf16_exact(w.bits.data() + begin, xs + begin, n);
  }
  return 0;
}

float DotFast(const KernelTable& k, const FloatRow& w, const float* x) {
  switch (w.type) {
    case FType::kF32:
      return k.dot_f32_fast(w.f32.data(), x, w.n());
    case FType::kF16:
      return k.dot_f16_fast(w.bits.data(), x, w.n());
    case FType::kBF16:
      return k.dot_bf16_fast(w.bits.data(), x, w.n());
  }
  return 0;
}

enum class QType { kQ8_0, kQ4_0 };
const char* Name(QType t) { return t == QType::kQ8_0 ? "q8_0" : "q4_0"; }

struct QuantRow {
  QType type;
  std::vector<BlockQ8_0> q8;
  std::vector<BlockQ4_0> q4;
  int64_t nb() const { return type == QType::kQ8_0 ? q8.size() : q4.size(); }
  std::vector<float> Dequantized() const {
    std::vector<float> out(nb() * kQK);
    const void* src = type == QType::kQ8_0 ? static_cast<const void*>(q8.data()) : q4.data();
    EXPECT_TRUE(DequantizeRow(type == QType::kQ8_0 ? DType::kQ8_0 : DType::kQ4_0, src,
                              out.size(), out.data())
                    .ok());
    return out;
  }
};

QuantRow QuantizeWeights(QType type, const std::vector<float>& v) {
  QuantRow r{type, {}, {}};
  const int64_t nb = v.size() / kQK;
  if (type == QType::kQ8_0) {
    r.q8.resize(nb);
    EXPECT_TRUE(QuantizeRow(DType::kQ8_0, v.data(), v.size(), r.q8.data()).ok());
  } else {
    r.q4.resize(nb);
    EXPECT_TRUE(QuantizeRow(DType::kQ4_0, v.data(), v.size(), r.q4.data()).ok());
  }
  return r;
}

// Raw random blocks: any qs byte (q8_0 includes -128), finite f16 scales of
// either sign, including subnormal ones and a few zero scales.
QuantRow RandomQuantRow(std::mt19937& rng, QType type, int64_t nb) {
  QuantRow r{type, {}, {}};
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mag(-8.0f, 2.0f);
  std::uniform_int_distribution<int> pick(0, 15);
  auto scale = [&]() -> uint16_t {
    const int p = pick(rng);
    if (p == 0) return 0;                                             // zero
    if (p == 1) return static_cast<uint16_t>(1 + byte(rng));          // subnormal
    if (p == 2) return static_cast<uint16_t>(0x7bff - byte(rng));     // huge (~65504)
    const float d = std::pow(2.0f, mag(rng)) * (byte(rng) & 1 ? -1.0f : 1.0f);
    return F32ToF16(d);
  };
  if (type == QType::kQ8_0) {
    r.q8.resize(nb);
    for (auto& b : r.q8) {
      b.d = scale();
      for (auto& q : b.qs) q = static_cast<int8_t>(byte(rng) - 128);
    }
  } else {
    r.q4.resize(nb);
    for (auto& b : r.q4) {
      b.d = scale();
      for (auto& q : b.qs) q = static_cast<uint8_t>(byte(rng));
    }
  }
  return r;
}

// Activation blocks with any d and qs in [-127, 127] (quantize_act_q8 never
// produces -128).
std::vector<ActBlockQ8> RandomActs(std::mt19937& rng, int64_t nb, bool huge = false) {
  std::vector<ActBlockQ8> x(nb);
  std::uniform_int_distribution<int> q(-127, 127);
  std::uniform_real_distribution<float> mag(huge ? 20.0f : -12.0f, huge ? 100.0f : 2.0f);
  std::uniform_int_distribution<int> pick(0, 15);
  for (auto& b : x) {
    const int p = pick(rng);
    b.d = p == 0 ? 0.0f : std::pow(2.0f, mag(rng)) * (p & 1 ? 1.0f : -1.0f) * (1.0f + p / 17.0f);
    for (auto& v : b.qs) v = static_cast<int8_t>(p == 1 ? 0 : q(rng));
  }
  return x;
}

std::vector<float> DequantizeActs(const std::vector<ActBlockQ8>& x) {
  std::vector<float> out(x.size() * kQK);
  for (size_t b = 0; b < x.size(); ++b) {
    for (int i = 0; i < kQK; ++i) out[b * kQK + i] = x[b].d * x[b].qs[i];
  }
  return out;
}

int64_t DotExact(const KernelTable& k, const QuantRow& w, const ActBlockQ8* x, int64_t begin,
                 int64_t end) {
  return w.type == QType::kQ8_0 ? k.dot_q8_0_exact(w.q8.data() + begin, x + begin, end - begin)
                                : k.dot_q4_0_exact(w.q4.data() + begin, x + begin, end - begin);
}

float DotFast(const KernelTable& k, const QuantRow& w, const ActBlockQ8* x) {
  return w.type == QType::kQ8_0 ? k.dot_q8_0_fast(w.q8.data(), x, w.nb())
                                : k.dot_q4_0_fast(w.q4.data(), x, w.nb());
}

// sum w_i * x_i and sum |w_i * x_i| in double.
struct Ref {
  double dot = 0, abs = 0;
};
Ref RefDot(const std::vector<float>& w, const std::vector<float>& x) {
  Ref r;
  for (size_t i = 0; i < w.size(); ++i) {
    const double p = static_cast<double>(w[i]) * x[i];
    r.dot += p;
    r.abs += std::fabs(p);
  }
  return r;
}

double ToDouble(int64_t fixed) { return static_cast<double>(fixed) / kFixedScale; }

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

// ---------------------------------------------------------------------------

class KernelsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto t = SelectKernels(GetParam());
    ASSERT_TRUE(t.ok()) << t.status();
    k_ = *t;
    ASSERT_NE(k_, nullptr);
  }
  const KernelTable& k() const { return *k_; }
  const KernelTable& scalar() const { return *ScalarKernels(); }

  const KernelTable* k_ = nullptr;
};

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
          float mag = 0.0f;  // sum of |terms|, bounding the rounding differences
          for (int64_t b = 0; b < nb; ++b) {
            float t = 0.0f;
            for (int i = 0; i < kQK / 2; ++i) {
              t += std::fabs(static_cast<float>((row[b].qs[i] & 15) - 8) * x[b].qs[i]) +
                   std::fabs(static_cast<float>((row[b].qs[i] >> 4) - 8) * x[b].qs[i + 16]);
            }
            mag += t * std::fabs(F16ToF32(row[b].d) * x[b].d);
          }
          EXPECT_NEAR(gotf[r], want, 1e-5f * mag + 1e-30f) << "row " << r;
        }
      }
    }
  }
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

std::string IsaName(const testing::TestParamInfo<std::string>& info) { return info.param; }

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
}  // namespace shardlm::cpu
