// Helpers shared by the kernel tests (kernels_test.cc and
// kernels_contract_test.cc): random weight rows and activations of every
// type, dispatch of a row to the matching table entry, a double-precision
// reference, and the fixture run on every instruction-set path.
#ifndef SHARDLM_BACKENDS_CPU_KERNELS_TEST_UTIL_H_
#define SHARDLM_BACKENDS_CPU_KERNELS_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernels.h"
#include "core/dtype.h"
#include "gtest/gtest.h"

namespace shardlm::cpu::kernels_testing {

extern const std::vector<int64_t> kFloatLengths;
extern const std::vector<int64_t> kBlockCounts;
// Extra block counts that exercise every remainder of a 4-block unroll.
extern const std::vector<int64_t> kMoreBlockCounts;

double Pow2(int e);

// ---------------------------------------------------------------------------
// Test data.

// Uniform values in [-scale, scale]; about `zero_frac` of them are zero (some
// negative zero) and, with `halves`, a few are small integers or exact halves.
std::vector<float> RandomFloats(std::mt19937& rng, int64_t n, float scale,
                                double zero_frac = 0.1, bool halves = true);

std::vector<double> Scaled(const std::vector<float>& x);

enum class FType { kF32, kF16, kBF16 };
const char* Name(FType t);
DType ToDType(FType t);

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

FloatRow EncodeFloatRow(FType type, const std::vector<float>& v);

// Arbitrary finite bit patterns (subnormals, huge values, both zeros).
FloatRow RandomBitsRow(std::mt19937& rng, FType type, int64_t n);

int64_t DotExact(const KernelTable& k, const FloatRow& w, const double* xs, int64_t begin,
                 int64_t end);
float DotFast(const KernelTable& k, const FloatRow& w, const float* x);

enum class QType { kQ8_0, kQ4_0 };
const char* Name(QType t);

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

QuantRow QuantizeWeights(QType type, const std::vector<float>& v);

// Raw random blocks: any qs byte (q8_0 includes -128), finite f16 scales of
// either sign, including subnormal ones and a few zero scales.
QuantRow RandomQuantRow(std::mt19937& rng, QType type, int64_t nb);

// Activation blocks with any d and qs in [-127, 127] (quantize_act_q8 never
// produces -128).
std::vector<ActBlockQ8> RandomActs(std::mt19937& rng, int64_t nb, bool huge = false);

std::vector<float> DequantizeActs(const std::vector<ActBlockQ8>& x);

int64_t DotExact(const KernelTable& k, const QuantRow& w, const ActBlockQ8* x, int64_t begin,
                 int64_t end);
float DotFast(const KernelTable& k, const QuantRow& w, const ActBlockQ8* x);

// sum w_i * x_i and sum |w_i * x_i| in double.
struct Ref {
  double dot = 0, abs = 0;
};
Ref RefDot(const std::vector<float>& w, const std::vector<float>& x);

double ToDouble(int64_t fixed);

// ---------------------------------------------------------------------------
// The fixture of the TEST_Ps, instantiated over SupportedIsas() by each test
// file (named by IsaName).

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

std::string IsaName(const testing::TestParamInfo<std::string>& info);

}  // namespace shardlm::cpu::kernels_testing

#endif  // SHARDLM_BACKENDS_CPU_KERNELS_TEST_UTIL_H_
