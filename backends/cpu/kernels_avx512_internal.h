// Internal to the AVX-512 kernels: kernels_avx512.cc (quantize_act_q8, the
// q4_0 / q8_0 dots and the kernel table) and kernels_avx512_float.cc (the
// f32 / f16 / bf16 dots). Include only from sources built with the
// kernels_avx512 copts.
//
// AVX-512 (F/BW/VL/DQ + VNNI) kernels. The exact dots and quantize_act_q8
// match the scalar definition (kernels_scalar.cc) bit for bit, for every
// input bit pattern (the only freedom left is which payload a product of
// two NaN scales keeps, which no path pins down):
//  - quantized sums of 4 elements are exact int32 VNNI sums (vpdpbusd) with
//    the byte of element i in byte i, so each 128-bit lane of a block's
//    256 bits is one half-block contract lane (16 elements).
//    vpdpbusd multiplies u8 x s8, so one operand is biased to unsigned and
//    the bias is removed by a second vpdpbusd on the complemented
//    activations (~q = -q - 1); per int32 of 4 elements:
//      q8_0:  sum w*q       = sum (w + 128)*q + [512 + sum 128*~q]
//      q4_0:  sum (n - 8)*q = sum n*q         + [32 + sum 8*~q]
//    which is exact for every int8 weight and activation, -128 included;
//    the 4 int32 of each 128-bit lane are then added (exact, |s_bh| <
//    2^18) by an unpack/add tree over 4 block pairs, which leaves the 16
//    half-block sums of 8 blocks in one register;
//  - the half-block sums are converted exactly to double and rounded with
//    fma(s, scale, 0x1.8p52): scale * s is exact (<= 53 significant bits,
//    kernels.h), so the fused form rounds exactly like the contract's
//    p + magic (also for huge, inf and NaN scales);
//  - float products (double)w * xs use a separate multiply and add, exactly
//    as the contract writes them, so they match for any double xs;
//  - the rounded values are accumulated as the raw bits of p + magic in
//    wrapping int64 lanes, and count * bits(magic) is subtracted once at the
//    end, which equals the sum of RoundFixed(p) modulo 2^64. Padding lanes
//    (zero weight and activation) contribute exactly bits(magic) and are
//    counted.
// Blocks are processed two per register and eight per scale computation
// and per register of half-block sums;
// no load reads past the end of an argument (masked loads at the edges).

#ifndef SHARDLM_BACKENDS_CPU_KERNELS_AVX512_INTERNAL_H_
#define SHARDLM_BACKENDS_CPU_KERNELS_AVX512_INTERNAL_H_

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "backends/cpu/kernels.h"

namespace shardlm::cpu::avx512_internal {

#define SHARDLM_AVX512_INLINE inline __attribute__((always_inline))

inline constexpr double kMagic = 6755399441055744.0;          // 0x1.8p52
inline constexpr uint64_t kMagicBits = 0x4338000000000000ull;  // bits(0x1.8p52)

// Sum of the raw int64 lanes minus count * bits(magic), modulo 2^64.
SHARDLM_AVX512_INLINE int64_t FinishFixed(__m512i acc, uint64_t count) {
  const uint64_t t = static_cast<uint64_t>(_mm512_reduce_add_epi64(acc));
  return static_cast<int64_t>(t - count * kMagicBits);
}

SHARDLM_AVX512_INLINE __m512i AddFixed(__m512i acc, __m512d y) {
  return _mm512_add_epi64(acc, _mm512_castpd_si512(y));
}

// The float dots (kernels_avx512_float.cc), referenced by the kernel table.
int64_t DotF32Exact(const float* w, const double* xs, int64_t n);
int64_t DotF16Exact(const uint16_t* w, const double* xs, int64_t n);
int64_t DotBF16Exact(const uint16_t* w, const double* xs, int64_t n);
float DotF32Fast(const float* w, const float* x, int64_t n);
float DotF16Fast(const uint16_t* w, const float* x, int64_t n);
float DotBF16Fast(const uint16_t* w, const float* x, int64_t n);

// The q4_0x8 entries (kernels_avx512_q4x8.cc), referenced by the kernel table.
size_t Q4x8ActBytes(int64_t nb);
void PrepareQ4x8Act(const ActBlockQ8* x, int64_t nb, void* act);
void DotQ4x8ExactRows(const void* w, size_t stride, int rows, const void* act,
                      const ActBlockQ8* x, int64_t nb, int64_t* out);
void DotQ4x8FastRows(const void* w, size_t stride, int rows, const void* act, const ActBlockQ8* x,
                     int64_t nb, float* out);

}  // namespace shardlm::cpu::avx512_internal

#endif  // SHARDLM_BACKENDS_CPU_KERNELS_AVX512_INTERNAL_H_
