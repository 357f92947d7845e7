#include "backends/cpu/kernels_test_util.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernels.h"
#include "core/dtype.h"
#include "gtest/gtest.h"

namespace shardlm::cpu::kernels_testing {

const std::vector<int64_t> kFloatLengths = {1, 7, 8, 15, 16, 31, 32, 33, 100, 257, 4096};
const std::vector<int64_t> kBlockCounts = {1, 2, 3, 7, 8, 64, 129};
const std::vector<int64_t> kMoreBlockCounts = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 64, 129};

double Pow2(int e) { return std::ldexp(1.0, e); }

std::vector<float> RandomFloats(std::mt19937& rng, int64_t n, float scale,
                                double zero_frac, bool halves) {
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

const char* Name(FType t) { return t == FType::kF32 ? "f32" : t == FType::kF16 ? "f16" : "bf16"; }
DType ToDType(FType t) {
  return t == FType::kF32 ? DType::kF32 : t == FType::kF16 ? DType::kF16 : DType::kBF16;
}

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

const char* Name(QType t) { return t == QType::kQ8_0 ? "q8_0" : "q4_0"; }

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

std::vector<ActBlockQ8> RandomActs(std::mt19937& rng, int64_t nb, bool huge) {
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

std::string IsaName(const testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace shardlm::cpu::kernels_testing
