// Scalar numerics shared by the CUDA kernels and host code (compiled by nvcc
// and gcc alike), each the device twin of a CPU-backend definition that exact
// numerics must reproduce bit for bit:
//   RoundFixed / FixedToFloat   backends/cpu/kernels.h (fixed-point contract)
//   RoundToInt8                 the Q8 activation rounding of kernels_scalar.cc
//   GlibcExpf                   std::exp(float) as glibc 2.36 computes it on
//                               x86-64 with FMA (the CPU's softmax and SiLU)
// Device code is compiled with -fmad=false, so the arithmetic below rounds
// every operation exactly as written (fused steps are spelled FmaD).
#ifndef SHARDLM_BACKENDS_CUDA_NUMERICS_H_
#define SHARDLM_BACKENDS_CUDA_NUMERICS_H_

#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define SHARDLM_HD __host__ __device__ __forceinline__
#else
#include <cmath>
#define SHARDLM_HD inline
#endif

namespace shardlm::cuda {

inline constexpr double kFixedScale = 1073741824.0;  // 2^30
inline constexpr int kExpTableSize = 32;             // 2^(i/32) table entries

SHARDLM_HD int64_t DoubleBits(double d) {
#ifdef __CUDA_ARCH__
  return __double_as_longlong(d);
#else
  int64_t b;
  std::memcpy(&b, &d, 8);
  return b;
#endif
}

SHARDLM_HD double BitsDouble(uint64_t b) {
#ifdef __CUDA_ARCH__
  return __longlong_as_double(static_cast<long long>(b));
#else
  double d;
  std::memcpy(&d, &b, 8);
  return d;
#endif
}

SHARDLM_HD uint32_t FloatBits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
#endif
}

// The IEEE fused multiply-add in double (exact on host and device).
SHARDLM_HD double FmaD(double a, double b, double c) {
#ifdef __CUDA_ARCH__
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// cpu::RoundFixed: bits(p + 0x1.8p52) - bits(0x1.8p52).
SHARDLM_HD int64_t RoundFixed(double p) {
  const double magic = 6755399441055744.0;  // 0x1.8p52
  const double y = p + magic;
  return static_cast<int64_t>(static_cast<uint64_t>(DoubleBits(y)) -
                              static_cast<uint64_t>(DoubleBits(magic)));
}

// Two's-complement int64 addition without signed-overflow UB.
SHARDLM_HD int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

// shardlm::FixedToFloat / cpu::FromFixed.
SHARDLM_HD float FixedToFloatHD(int64_t sum) {
  return static_cast<float>(static_cast<double>(sum) * (1.0 / kFixedScale));
}

// The quantized-contract block scale d_w * (d_x * 2^30) (exact in double).
SHARDLM_HD double BlockScale(float dw, float dx) {
  return static_cast<double>(dw) * (static_cast<double>(dx) * kFixedScale);
}

// nearbyint(v) to int8 exactly as cpu::QuantizeActQ8 rounds: NaN or out of
// int32 range gives INT32_MIN, then the clamp to [-127, 127].
SHARDLM_HD int8_t RoundToInt8(float v) {
#ifdef __CUDA_ARCH__
  const float r = rintf(v);
#else
  const float r = std::nearbyint(v);
#endif
  int32_t i;
  if (r >= -2147483648.0f && r < 2147483648.0f) {
    i = static_cast<int32_t>(r);
  } else {
    i = INT32_MIN;
  }
  if (i > 127) i = 127;
  if (i < -127) i = -127;
  return static_cast<int8_t>(i);
}

// expf with glibc 2.36's algorithm (x * 32/ln2 = k + r, 2^(k/32) from
// `table`, a cubic in r, all in double) and the fused operations of its FMA
// build, which glibc selects on every x86-64 CPU with FMA. `table` is
// ExpTable() (exp_table.h). Checked against this machine's std::exp for all
// 2^32 inputs (fixed_point_test samples them).
SHARDLM_HD float GlibcExpf(float x, const uint64_t* table) {
  const uint32_t ux = FloatBits(x);
  const uint32_t abstop = (ux >> 20) & 0x7ff;
  if (abstop >= 0x42b) {  // |x| >= 88 or NaN
    if (ux == 0xff800000u) return 0.0f;
    if (abstop >= 0x7f8) return x + x;
    if (x > 0x1.62e42ep6f) return __builtin_huge_valf();  // exp(x) > FLT_MAX
    if (x < -0x1.9fe368p6f) return 0.0f;                  // exp(x) < 2^-150
  }
  const double inv_ln2_n = 0x1.71547652b82fep0 * 32.0;
  const double shift = 0x1.8p52;
  const double c0 = 0x1.c6af84b912394p-5 / 32.0 / 32.0 / 32.0;
  const double c1 = 0x1.ebfce50fac4f3p-3 / 32.0 / 32.0;
  const double c2 = 0x1.62e42ff0c52d6p-1 / 32.0;
  const double xd = static_cast<double>(x);
  double kd = FmaD(inv_ln2_n, xd, shift);
  const uint64_t ki = static_cast<uint64_t>(DoubleBits(kd));
  kd -= shift;
  const double r = FmaD(inv_ln2_n, xd, -kd);
  const uint64_t t = table[ki % kExpTableSize] + (ki << 47);
  const double s = BitsDouble(t);
  const double z = FmaD(c0, r, c1);
  const double r2 = r * r;
  double y = FmaD(c2, r, 1.0);
  y = FmaD(z, r2, y);
  y = y * s;
  return static_cast<float>(y);
}

}  // namespace shardlm::cuda

#endif  // SHARDLM_BACKENDS_CUDA_NUMERICS_H_
