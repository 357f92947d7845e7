// AVX-512 (F/BW/VL/DQ + VNNI) kernels: quantize_act_q8, the q4_0 / q8_0 dots
// and the kernel table; the float dots are in kernels_avx512_float.cc. How
// they match the scalar definition bit for bit: kernels_avx512_internal.h.

// GCC 12 reports its own _mm*_undefined_*() self-initialisations, inlined
// into the 512 <-> 256-bit casts and extracts, as (maybe-)uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/kernels.h"
#include "backends/cpu/kernels_avx512_internal.h"
#include "core/dtype.h"

namespace shardlm::cpu {
namespace avx512_internal {
namespace {

SHARDLM_AVX512_INLINE __m512i NotBytes(__m512i v) {
  return _mm512_ternarylogic_epi32(v, v, v, 0x55);  // ~v
}

SHARDLM_AVX512_INLINE float F16Scalar(uint16_t h) {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

// Two 32-byte rows (qs of consecutive blocks) in one register.
SHARDLM_AVX512_INLINE __m512i Load2x256(const void* lo, const void* hi) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(lo))),
      _mm256_loadu_si256(static_cast<const __m256i*>(hi)), 1);
}

// As Load2x256, the second row absent (zero) unless `two`.
SHARDLM_AVX512_INLINE __m512i Load2x256Partial(const void* lo, const void* hi, bool two) {
  const __m256i h =
      two ? _mm256_loadu_si256(static_cast<const __m256i*>(hi)) : _mm256_setzero_si256();
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(lo))), h, 1);
}
// ---------------------------------------------------------------------------
// quantize_act_q8

void QuantizeActQ8(const float* x, int64_t n, ActBlockQ8* out) {
  const int64_t nb = n / kQK;
  const __m512 zero = _mm512_setzero_ps();
  const __m512i min_q = _mm512_set1_epi32(-127);
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQK;
    const __m512 v0 = _mm512_loadu_ps(xb);
    const __m512 v1 = _mm512_loadu_ps(xb + 16);
    // max(a, m) returns m when a is NaN: a NaN never becomes the maximum,
    // as in the scalar `if (a > amax) amax = a`.
    __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), zero);
    m = _mm512_max_ps(_mm512_abs_ps(v1), m);
    const float amax = _mm512_reduce_max_ps(m);  // no NaN left: order-free
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512 idv = _mm512_set1_ps(id);
    // cvtps2dq rounds like nearbyint (current mode, ties to even by default)
    // and gives INT32_MIN for NaN / out of range; the result is clamped to
    // [-127, 127] (max with -127, then vpmovsdb saturates at 127), as in the
    // scalar definition. No activation is ever -128.
    const __m512i i0 = _mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v0, idv)), min_q);
    const __m512i i1 = _mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v1, idv)), min_q);
    out[b].d = d;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].qs), _mm512_cvtsepi32_epi8(i0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].qs + 16), _mm512_cvtsepi32_epi8(i1));
  }
}

// ---------------------------------------------------------------------------
// Per-block scales of 8 consecutive blocks.

// The activation scales x[0..8).d: floats at index 9k.
SHARDLM_AVX512_INLINE __m256 ActScales8(const ActBlockQ8* x) {
  const float* f = reinterpret_cast<const float*>(x);
  const __m512i i0 = _mm512_setr_epi32(0, 9, 16, 25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i i1 = _mm512_setr_epi32(0, 0, 0, 0, 0, 9, 16, 25, 0, 0, 0, 0, 0, 0, 0, 0);
  // Floats 0, 9 | 18, 27 (from the load at 18) | 36, 45 | 54, 63.
  const __m512 lo = _mm512_permutex2var_ps(_mm512_loadu_ps(f), i0, _mm512_loadu_ps(f + 18));
  const __m512 hi = _mm512_permutex2var_ps(_mm512_loadu_ps(f + 36), i1, _mm512_loadu_ps(f + 54));
  return _mm512_castps512_ps256(_mm512_mask_blend_ps(0xF0, lo, hi));
}

// The f16 weight scales of 8 q4_0 blocks (words at index 9k), as floats.
SHARDLM_AVX512_INLINE __m256 WeightScales8(const BlockQ4_0* w) {
  const uint16_t* p = reinterpret_cast<const uint16_t*>(w);
  const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                       0, 0, 0, 0, 0, 0, 0, 0, 63, 54, 45, 36, 27, 18, 9, 0);
  const __m512i h = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx, _mm512_loadu_si512(p + 32));
  return _mm256_cvtph_ps(_mm512_castsi512_si128(h));
}

// The f16 weight scales of 8 q8_0 blocks (words at index 17k), as floats.
SHARDLM_AVX512_INLINE __m256 WeightScales8(const BlockQ8_0* w) {
  const uint16_t* p = reinterpret_cast<const uint16_t*>(w);
  // Words 0, 17 | 34, 51 (load at 34) | 68, 85 | 102, 119.
  const __m512i i0 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 32, 17, 0);
  const __m512i i1 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                      0, 0, 0, 0, 0, 0, 0, 0, 49, 32, 17, 0, 0, 0, 0, 0);
  const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), i0, _mm512_loadu_si512(p + 34));
  const __m512i hi =
      _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 68), i1, _mm512_loadu_si512(p + 102));
  return _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_mask_blend_epi16(0xF0, lo, hi)));
}

// Exact scales d_w * (d_x * 2^30) of 8 blocks.
template <typename Block>
SHARDLM_AVX512_INLINE __m512d ExactScales8(const Block* w, const ActBlockQ8* x) {
  const __m512d dw = _mm512_cvtps_pd(WeightScales8(w));
  const __m512d dx = _mm512_mul_pd(_mm512_cvtps_pd(ActScales8(x)), _mm512_set1_pd(kFixedScale));
  return _mm512_mul_pd(dw, dx);
}

template <typename Block>
SHARDLM_AVX512_INLINE double ExactScale1(const Block& w, const ActBlockQ8& x) {
  return static_cast<double>(F16Scalar(w.d)) * (static_cast<double>(x.d) * kFixedScale);
}

// Fast scales d_w * d_x (float) of 8 blocks.
template <typename Block>
SHARDLM_AVX512_INLINE __m256 FastScales8(const Block* w, const ActBlockQ8* x) {
  return _mm256_mul_ps(WeightScales8(w), ActScales8(x));
}

// ---------------------------------------------------------------------------
// Exact sums of 4 elements of two blocks: int32 lanes 0..7 = block b (lane
// j = elements 4j..4j+3), 8..15 = b + 1.

// q8_0: w + 128 (u8) times q, minus 128 * sum q, all in vpdpbusd.
struct Q8Lanes {
  __m512i k80 = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i k512 = _mm512_set1_epi32(512);

  SHARDLM_AVX512_INLINE __m512i operator()(__m512i w, __m512i x) const {
    const __m512i u = _mm512_xor_si512(w, k80);
    const __m512i c = _mm512_dpbusd_epi32(k512, k80, NotBytes(x));  // -128 * sum q
    return _mm512_dpbusd_epi32(c, u, x);
  }
};

// q4_0: the 16 qs bytes of each block are placed twice (words 1..8 of a
// block start at word 9k + 1, so one vpermw does it), the second copy
// shifted right by 4, so byte i holds nibble i; then nibble * q - 8 * sum q.
// With `kScaledHigh` the high nibbles are left in place (16 * nibble) and
// the correction is 128 * sum q there: lanes 4..7 of each block are 16 x the
// true sums (exact; the fast path scales them back, the exact paths use
// scale / 16 for those halves, see AccumulateHalves).
template <bool kScaledHigh>
struct Q4Lanes {
  // `raw` = 64 bytes from the start of the first block.
  __m512i idx = _mm512_set_epi16(17, 16, 15, 14, 13, 12, 11, 10, 17, 16, 15, 14, 13, 12, 11, 10,  //
                                 8, 7, 6, 5, 4, 3, 2, 1, 8, 7, 6, 5, 4, 3, 2, 1);
  // `raw` = the 64 bytes ending with the second block (starting 28 bytes =
  // 14 words before the first), so nothing past the pair is read.
  __m512i idx_end = _mm512_add_epi16(idx, _mm512_set1_epi16(14));
  __m512i nib = kScaledHigh
                    ? _mm512_set_epi64(-0x0f0f0f0f0f0f0f10ll, -0x0f0f0f0f0f0f0f10ll,
                                       0x0f0f0f0f0f0f0f0fll, 0x0f0f0f0f0f0f0f0fll,
                                       -0x0f0f0f0f0f0f0f10ll, -0x0f0f0f0f0f0f0f10ll,
                                       0x0f0f0f0f0f0f0f0fll, 0x0f0f0f0f0f0f0f0fll)
                    : _mm512_set1_epi8(0x0f);
  __m512i k8 = kScaledHigh ? _mm512_set_epi64(-0x7f7f7f7f7f7f7f80ll, -0x7f7f7f7f7f7f7f80ll,
                                              0x0808080808080808ll, 0x0808080808080808ll,
                                              -0x7f7f7f7f7f7f7f80ll, -0x7f7f7f7f7f7f7f80ll,
                                              0x0808080808080808ll, 0x0808080808080808ll)
                           : _mm512_set1_epi8(8);
  __m512i k32 = kScaledHigh ? _mm512_set_epi32(512, 512, 512, 512, 32, 32, 32, 32,  //
                                               512, 512, 512, 512, 32, 32, 32, 32)
                            : _mm512_set1_epi32(32);

  SHARDLM_AVX512_INLINE __m512i operator()(__m512i raw, __m512i pick, __m512i x) const {
    __m512i q = _mm512_permutexvar_epi16(pick, raw);
    if (!kScaledHigh) q = _mm512_mask_srli_epi16(q, 0xFF00FF00u, q, 4);
    q = _mm512_and_si512(q, nib);
    const __m512i c = _mm512_dpbusd_epi32(k32, k8, NotBytes(x));  // -8 * sum q (x16 high)
    return _mm512_dpbusd_epi32(c, q, x);
  }

  // Pairs (0,1) .. (6,7) of a group of 8 blocks, read without going past
  // the group: the last pair's load ends at the group's end.
  SHARDLM_AVX512_INLINE __m512i Pair(const BlockQ4_0* g, const ActBlockQ8* x, int p) const {
    const __m512i xv = Load2x256(x[p].qs, x[p + 1].qs);
    if (p < 6) return (*this)(_mm512_loadu_si512(g + p), idx, xv);
    return (*this)(_mm512_loadu_si512(reinterpret_cast<const char*>(g + 8) - 64), idx_end, xv);
  }
};

// The raw bytes of blocks b, b + 1 (36 bytes), without reading past them.
SHARDLM_AVX512_INLINE __m512i LoadQ4PairMasked(const BlockQ4_0* w, bool two) {
  return _mm512_maskz_loadu_epi16(two ? 0x3FFFFu : 0x1FFu, w);
}

// ---------------------------------------------------------------------------
// Exact quantized dots.

// Half-block sums. A pair register (int32 lanes 0..7 = block 2k, 8..15 =
// block 2k + 1, k = 0..3 the pair of a group of 8 blocks) holds in its
// 128-bit lane m the 4 partial sums of half m % 2 of block 2k + m / 2.
// FoldPairs(s0, s1) then HalfSums(FoldPairs(s0, s1), FoldPairs(s2, s3))
// add the 4 int32 of each 128-bit lane of the 4 pairs: dword 4m + k of the
// result = s_bh of block 2k + m / 2, half h = m % 2 (exact in int32).
SHARDLM_AVX512_INLINE __m512i FoldPairs(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
SHARDLM_AVX512_INLINE __m512i HalfSums(__m512i u01, __m512i u23) {
  return _mm512_add_epi32(_mm512_unpacklo_epi64(u01, u23), _mm512_unpackhi_epi64(u01, u23));
}

// Rounds the 16 half-block sums `h` of 8 blocks (HalfSums order) with the
// blocks' scales (block order) and adds them: the low 8 dwords are halves
// 0 of blocks 0, 2, 4, 6 then halves 1 of them, the high 8 the same of
// blocks 1, 3, 5, 7. Halves 0 use `sc0`, halves 1 `sc1`: with q4_0 high
// nibbles left in place (Q4Lanes<true>) the halves 1 hold 16 * s_b1 and
// sc1 = sc / 16, a product equal to scale * s_b1 (both exact).
SHARDLM_AVX512_INLINE void AccumulateHalves(__m512i h, __m512d sc0, __m512d sc1, __m512d magic,
                                            __m512i& acc0, __m512i& acc1) {
  const __m512i ilo = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  const __m512i ihi = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
  const __m512d lo = _mm512_cvtepi32_pd(_mm512_castsi512_si256(h));
  const __m512d hi = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(h, 1));
  acc0 = AddFixed(acc0, _mm512_fmadd_pd(lo, _mm512_permutex2var_pd(sc0, ilo, sc1), magic));
  acc1 = AddFixed(acc1, _mm512_fmadd_pd(hi, _mm512_permutex2var_pd(sc0, ihi, sc1), magic));
}

// The scales of halves 1 for Q4Lanes<true>: sc / 16, exact (a power of two;
// sc >= 2^-143 when not zero, far from the double subnormals).
SHARDLM_AVX512_INLINE __m512d Sixteenth(__m512d sc) {
  return _mm512_mul_pd(sc, _mm512_set1_pd(0.0625));
}

// The lanes of one group of 8 (or fewer) blocks, as 4 pair registers.
SHARDLM_AVX512_INLINE __m512i GroupHalves(const __m512i* s) {
  return HalfSums(FoldPairs(s[0], s[1]), FoldPairs(s[2], s[3]));
}

// The last nb % 8 (< 8) blocks as one zero-padded group: a missing block
// has zero weights, activations and scale, so its lane sums are 0 and its
// half-block lanes add exactly bits(magic) each (counted by the caller).
// `pair(i, two)` gives the lane sums of blocks i, i + 1 (i alone unless
// `two`), read without going past them.
template <bool kScaledHigh, typename Block, typename PairFn>
SHARDLM_AVX512_INLINE void AccumulateRest(const Block* w, const ActBlockQ8* x, int64_t b,
                                          int64_t rest, PairFn pair, __m512d magic,
                                          __m512i& acc0, __m512i& acc1) {
  alignas(64) double sc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  __m512i s[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                  _mm512_setzero_si512()};
  for (int64_t p = 0; p < rest; p += 2) {
    const bool two = p + 1 < rest;
    const int64_t i = b + p;
    sc[p] = ExactScale1(w[i], x[i]);
    if (two) sc[p + 1] = ExactScale1(w[i + 1], x[i + 1]);
    s[p / 2] = pair(i, two);
  }
  const __m512d scv = _mm512_load_pd(sc);
  AccumulateHalves(GroupHalves(s), scv, kScaledHigh ? Sixteenth(scv) : scv, magic, acc0, acc1);
}

int64_t DotQ4_0Exact(const BlockQ4_0* w, const ActBlockQ8* x, int64_t nb) {
  const Q4Lanes<true> lanes;  // halves 1 hold 16 * s_b1
  const __m512d magic = _mm512_set1_pd(kMagic);
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  __m512i acc2 = _mm512_setzero_si512(), acc3 = _mm512_setzero_si512();
  int64_t b = 0;
  for (; b + 16 <= nb; b += 16) {
    const __m512d sc0 = ExactScales8(w + b, x + b);
    const __m512d sc1 = ExactScales8(w + b + 8, x + b + 8);
    __m512i s0[4], s1[4];
    for (int p = 0; p < 8; p += 2) {
      s0[p / 2] = lanes.Pair(w + b, x + b, p);
      s1[p / 2] = lanes.Pair(w + b + 8, x + b + 8, p);
    }
    AccumulateHalves(GroupHalves(s0), sc0, Sixteenth(sc0), magic, acc0, acc1);
    AccumulateHalves(GroupHalves(s1), sc1, Sixteenth(sc1), magic, acc2, acc3);
  }
  for (; b + 8 <= nb; b += 8) {
    const __m512d sc = ExactScales8(w + b, x + b);
    __m512i s[4];
    for (int p = 0; p < 8; p += 2) s[p / 2] = lanes.Pair(w + b, x + b, p);
    AccumulateHalves(GroupHalves(s), sc, Sixteenth(sc), magic, acc0, acc1);
  }
  const int64_t rest = nb - b;
  if (rest > 0) {
    AccumulateRest<true>(
        w, x, b, rest,
        [&](int64_t i, bool two) {
          const ActBlockQ8* x1 = x + i + (two ? 1 : 0);
          return lanes(LoadQ4PairMasked(w + i, two), lanes.idx,
                       Load2x256Partial(x[i].qs, x1->qs, two));
        },
        magic, acc0, acc1);
  }
  const uint64_t lanes_total = 16 * static_cast<uint64_t>((nb + 7) / 8);
  const __m512i acc = _mm512_add_epi64(_mm512_add_epi64(acc0, acc1), _mm512_add_epi64(acc2, acc3));
  return FinishFixed(acc, lanes_total);
}

int64_t DotQ8_0Exact(const BlockQ8_0* w, const ActBlockQ8* x, int64_t nb) {
  const Q8Lanes lanes;
  const __m512d magic = _mm512_set1_pd(kMagic);
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  __m512i acc2 = _mm512_setzero_si512(), acc3 = _mm512_setzero_si512();
  const auto pair = [&](int64_t i) {
    return lanes(Load2x256(w[i].qs, w[i + 1].qs), Load2x256(x[i].qs, x[i + 1].qs));
  };
  int64_t b = 0;
  for (; b + 16 <= nb; b += 16) {
    const __m512d sc0 = ExactScales8(w + b, x + b);
    const __m512d sc1 = ExactScales8(w + b + 8, x + b + 8);
    __m512i s0[4], s1[4];
    for (int p = 0; p < 8; p += 2) {
      s0[p / 2] = pair(b + p);
      s1[p / 2] = pair(b + 8 + p);
    }
    AccumulateHalves(GroupHalves(s0), sc0, sc0, magic, acc0, acc1);
    AccumulateHalves(GroupHalves(s1), sc1, sc1, magic, acc2, acc3);
  }
  for (; b + 8 <= nb; b += 8) {
    const __m512d sc = ExactScales8(w + b, x + b);
    __m512i s[4];
    for (int p = 0; p < 8; p += 2) s[p / 2] = pair(b + p);
    AccumulateHalves(GroupHalves(s), sc, sc, magic, acc0, acc1);
  }
  const int64_t rest = nb - b;
  if (rest > 0) {
    AccumulateRest<false>(
        w, x, b, rest,
        [&](int64_t i, bool two) {
          const BlockQ8_0* w1 = w + i + (two ? 1 : 0);
          const ActBlockQ8* x1 = x + i + (two ? 1 : 0);
          return lanes(Load2x256Partial(w[i].qs, w1->qs, two),
                       Load2x256Partial(x[i].qs, x1->qs, two));
        },
        magic, acc0, acc1);
  }
  const uint64_t lanes_total = 16 * static_cast<uint64_t>((nb + 7) / 8);
  const __m512i acc = _mm512_add_epi64(_mm512_add_epi64(acc0, acc1), _mm512_add_epi64(acc2, acc3));
  return FinishFixed(acc, lanes_total);
}

// ---------------------------------------------------------------------------
// Fast quantized dots: acc += (d_w * d_x) * float(lane sums).

// Broadcasts scale k of `sc` to lanes 0..7 and scale k + 1 to lanes 8..15.
SHARDLM_AVX512_INLINE __m512 PairScales(__m512 sc, int k) {
  const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(k)),
                                         _mm256_set1_epi32(k + 1), 1);
  return _mm512_permutexvar_ps(idx, sc);
}

float DotQ4_0Fast(const BlockQ4_0* w, const ActBlockQ8* x, int64_t nb) {
  const Q4Lanes<true> lanes;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const __m512 sc = _mm512_castps256_ps512(FastScales8(w + b, x + b));
    for (int p = 0; p < 8; p += 4) {
      const __m512i s0 = lanes.Pair(w + b, x + b, p);
      const __m512i s1 = lanes.Pair(w + b, x + b, p + 2);
      acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), PairScales(sc, p), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), PairScales(sc, p + 2), acc1);
    }
  }
  const int64_t rest = nb - b;
  for (int64_t p = 0; p < rest; p += 2) {
    const bool two = p + 1 < rest;
    const int64_t i = b + p;
    const float s0 = F16Scalar(w[i].d) * x[i].d;
    const float s1 = two ? F16Scalar(w[i + 1].d) * x[i + 1].d : 0.0f;
    const __m512 scv = _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
    const ActBlockQ8* x1 = x + i + (two ? 1 : 0);
    const __m512i s =
        lanes(LoadQ4PairMasked(w + i, two), lanes.idx, Load2x256Partial(x[i].qs, x1->qs, two));
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scv, acc0);
  }
  // Lanes 4..7 of each block hold 16 x the lane sums.
  const __m512 unscale = _mm512_setr_ps(1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f,  //
                                        1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f);
  return _mm512_reduce_add_ps(_mm512_mul_ps(_mm512_add_ps(acc0, acc1), unscale));
}

float DotQ8_0Fast(const BlockQ8_0* w, const ActBlockQ8* x, int64_t nb) {
  const Q8Lanes lanes;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const __m512 sc = _mm512_castps256_ps512(FastScales8(w + b, x + b));
    for (int p = 0; p < 8; p += 4) {
      const __m512i s0 = lanes(Load2x256(w[b + p].qs, w[b + p + 1].qs),
                               Load2x256(x[b + p].qs, x[b + p + 1].qs));
      const __m512i s1 = lanes(Load2x256(w[b + p + 2].qs, w[b + p + 3].qs),
                               Load2x256(x[b + p + 2].qs, x[b + p + 3].qs));
      acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), PairScales(sc, p), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), PairScales(sc, p + 2), acc1);
    }
  }
  const int64_t rest = nb - b;
  for (int64_t p = 0; p < rest; p += 2) {
    const bool two = p + 1 < rest;
    const int64_t i = b + p;
    const float s0 = F16Scalar(w[i].d) * x[i].d;
    const float s1 = two ? F16Scalar(w[i + 1].d) * x[i + 1].d : 0.0f;
    const __m512 scv = _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
    const BlockQ8_0* w1 = w + i + (two ? 1 : 0);
    const ActBlockQ8* x1 = x + i + (two ? 1 : 0);
    const __m512i s = lanes(Load2x256Partial(w[i].qs, w1->qs, two),
                            Load2x256Partial(x[i].qs, x1->qs, two));
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scv, acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// ---------------------------------------------------------------------------
// Multi-row q4_0 dots: R rows against one activation. The activation pair
// loads, the offset correction (dpbusd on ~x, the accumulator input of the
// per-row dpbusd), the activation scales and the loop overhead are shared
// by the rows, and the rows give R independent dependency chains. Whole
// groups of 8 blocks here; the rest (< 8 blocks) by the single-row dots.

// Broadcast indices of PairScales for the pairs (0,1), (2,3), (4,5), (6,7).
struct PairIdx {
  __m512i v[4];
  PairIdx() {
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(2 * k)),
                                _mm256_set1_epi32(2 * k + 1), 1);
    }
  }
};

// The R-row dots prefetch, for each row, the same blocks of the row R rows
// further (the next call's rows: a matrix's rows are contiguous, and
// prefetches never fault). With R interleaved row streams the hardware
// prefetchers alone fall short. Measured (one thread, 64 MiB, fast):
// no prefetch ~2x slower; a fixed 4 KiB ahead ~25.5 GB/s; R rows ahead
// ~30.5; 2R rows ahead ~27.5.

// The qs of blocks g[0], g[1] as 128-bit lanes qs0, qs0, qs1, qs1 (as
// Q4Lanes::Pair places them); `inner`: 64 bytes from g may be read.
// (Measured: two 16-byte broadcast loads instead are ~10% slower.)
template <bool kScaledHigh>
SHARDLM_AVX512_INLINE __m512i LoadQ4Pair(const BlockQ4_0* g, const Q4Lanes<kScaledHigh>& lanes,
                                         bool inner) {
  return inner ? _mm512_permutexvar_epi16(lanes.idx, _mm512_loadu_si512(g))
               : _mm512_permutexvar_epi16(
                     lanes.idx_end, _mm512_loadu_si512(reinterpret_cast<const char*>(g + 2) - 64));
}

template <int R>
SHARDLM_AVX512_INLINE void DotQ4_0FastRowsR(const uint8_t* w, size_t stride, const ActBlockQ8* x,
                                            int64_t nb, float* out) {
  const Q4Lanes<true> lanes;
  const PairIdx pidx;
  const __m512i k32 = lanes.k32, k8 = lanes.k8;
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  const size_t pf = R * stride;  // prefetch distance (above)
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const __m256 xs = ActScales8(x + b);
    __m512 sc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const BlockQ4_0* g = reinterpret_cast<const BlockQ4_0*>(w + r * stride) + b;
      _mm_prefetch(reinterpret_cast<const char*>(g) + pf, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(g) + pf + 64, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(g) + pf + 128, _MM_HINT_T0);
      sc[r] = _mm512_castps256_ps512(_mm256_mul_ps(WeightScales8(g), xs));
    }
#pragma GCC unroll 4
    for (int p = 0; p < 8; p += 2) {
      const __m512i xv = Load2x256(x[b + p].qs, x[b + p + 1].qs);
      const __m512i c = _mm512_dpbusd_epi32(k32, k8, NotBytes(xv));
  #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const BlockQ4_0* g = reinterpret_cast<const BlockQ4_0*>(w + r * stride) + b;
        __m512i q = LoadQ4Pair(g + p, lanes, p < 6);
        q = _mm512_and_si512(q, lanes.nib);
        const __m512i s = _mm512_dpbusd_epi32(c, q, xv);
        const __m512 f = _mm512_cvtepi32_ps(s);
        const __m512 scp = _mm512_permutexvar_ps(pidx.v[p / 2], sc[r]);
        if ((p / 2) % 2 == 0) {
          acc0[r] = _mm512_fmadd_ps(f, scp, acc0[r]);
        } else {
          acc1[r] = _mm512_fmadd_ps(f, scp, acc1[r]);
        }
      }
    }
  }
  const __m512 unscale = _mm512_setr_ps(1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f,  //
                                        1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f);
  for (int r = 0; r < R; ++r) {
    float v = _mm512_reduce_add_ps(_mm512_mul_ps(_mm512_add_ps(acc0[r], acc1[r]), unscale));
    if (b < nb) {
      v += DotQ4_0Fast(reinterpret_cast<const BlockQ4_0*>(w + r * stride) + b, x + b, nb - b);
    }
    out[r] = v;
  }
}

template <int R>
SHARDLM_AVX512_INLINE void DotQ4_0ExactRowsR(const uint8_t* w, size_t stride, const ActBlockQ8* x,
                                             int64_t nb, int64_t* out) {
  const Q4Lanes<true> lanes;  // halves 1 hold 16 * s_b1
  const __m512d magic = _mm512_set1_pd(kMagic);
  const __m512i k32 = lanes.k32, k8 = lanes.k8;
  __m512i acc0[R], acc1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_si512();
  const size_t pf = R * stride;  // prefetch distance (above)
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const __m512d dx =
        _mm512_mul_pd(_mm512_cvtps_pd(ActScales8(x + b)), _mm512_set1_pd(kFixedScale));
    __m512d sc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const BlockQ4_0* g = reinterpret_cast<const BlockQ4_0*>(w + r * stride) + b;
      _mm_prefetch(reinterpret_cast<const char*>(g) + pf, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(g) + pf + 64, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(g) + pf + 128, _MM_HINT_T0);
      sc[r] = _mm512_mul_pd(_mm512_cvtps_pd(WeightScales8(g)), dx);
    }
    // Pairs (0,1), (2,3) folded into u[r][0], pairs (4,5), (6,7) into
    // u[r][1] (FoldPairs), so few registers stay live per row.
    __m512i u[R][2];
#pragma GCC unroll 2
    for (int hq = 0; hq < 2; ++hq) {
      __m512i s[R][2];
#pragma GCC unroll 2
      for (int pp = 0; pp < 2; ++pp) {
        const int p = 4 * hq + 2 * pp;
        const __m512i xv = Load2x256(x[b + p].qs, x[b + p + 1].qs);
        const __m512i c = _mm512_dpbusd_epi32(k32, k8, NotBytes(xv));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const BlockQ4_0* g = reinterpret_cast<const BlockQ4_0*>(w + r * stride) + b;
          __m512i q = LoadQ4Pair(g + p, lanes, p < 6);
          q = _mm512_and_si512(q, lanes.nib);
          s[r][pp] = _mm512_dpbusd_epi32(c, q, xv);
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) u[r][hq] = FoldPairs(s[r][0], s[r][1]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      AccumulateHalves(HalfSums(u[r][0], u[r][1]), sc[r], Sixteenth(sc[r]), magic, acc0[r],
                       acc1[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    // Sums of RoundFixed modulo 2^64: the groups' and the rest's add up.
    uint64_t v = static_cast<uint64_t>(
        FinishFixed(_mm512_add_epi64(acc0[r], acc1[r]), 2 * static_cast<uint64_t>(b)));
    if (b < nb) {
      v += static_cast<uint64_t>(
          DotQ4_0Exact(reinterpret_cast<const BlockQ4_0*>(w + r * stride) + b, x + b, nb - b));
    }
    out[r] = static_cast<int64_t>(v);
  }
}

// Rows per call of the R-row kernels (measured best: 4; exact with 2 or 3
// is slower).
constexpr int kQ4Rows = 4;
constexpr int kQ4RowsExact = 4;

void DotQ4_0FastRows(const void* w, size_t stride, int rows, const ActBlockQ8* x, int64_t nb,
                     float* out) {
  const uint8_t* p = static_cast<const uint8_t*>(w);
  int r = 0;
  for (; r + kQ4Rows <= rows; r += kQ4Rows) DotQ4_0FastRowsR<kQ4Rows>(p + r * stride, stride, x, nb, out + r);
  for (; r + 2 <= rows; r += 2) DotQ4_0FastRowsR<2>(p + r * stride, stride, x, nb, out + r);
  if (r < rows) DotQ4_0FastRowsR<1>(p + r * stride, stride, x, nb, out + r);
}

void DotQ4_0ExactRows(const void* w, size_t stride, int rows, const ActBlockQ8* x, int64_t nb,
                      int64_t* out) {
  const uint8_t* p = static_cast<const uint8_t*>(w);
  int r = 0;
  for (; r + kQ4RowsExact <= rows; r += kQ4RowsExact) {
    DotQ4_0ExactRowsR<kQ4RowsExact>(p + r * stride, stride, x, nb, out + r);
  }
  for (; r + 2 <= rows; r += 2) DotQ4_0ExactRowsR<2>(p + r * stride, stride, x, nb, out + r);
  if (r < rows) DotQ4_0ExactRowsR<1>(p + r * stride, stride, x, nb, out + r);
}
const KernelTable kAvx512Table = {
    "avx512",     QuantizeActQ8, DotQ4_0Exact, DotQ8_0Exact, DotF32Exact, DotF16Exact,
    DotBF16Exact, DotQ4_0Fast,   DotQ8_0Fast,  DotF32Fast,   DotF16Fast,  DotBF16Fast,
    DotQ4_0ExactRows, DotQ4_0FastRows,
    Q4x8ActBytes, PrepareQ4x8Act, DotQ4x8ExactRows, DotQ4x8FastRows,
};

}  // namespace
}  // namespace avx512_internal

const KernelTable* Avx512Kernels() { return &avx512_internal::kAvx512Table; }

}  // namespace shardlm::cpu
