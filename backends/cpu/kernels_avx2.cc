// AVX2 + FMA + F16C kernels. The exact dots and quantize_act_q8 match the
// scalar definition (kernels_scalar.cc) bit for bit:
//  - quantized half-block sums s_bh are computed exactly in integers
//    (maddubs + madd give sums of 4 elements, two rounds of hadd add them
//    up to 16), converted exactly to double, and rounded with
//    fma(scale, s, 0x1.8p52): scale * s is exact (<= 53 significant bits,
//    kernels.h), so the fused form rounds exactly like the contract's
//    p + magic;
//  - float products (double)w * xs use a separate multiply and add (no FMA),
//    exactly as the contract writes them;
//  - the rounded values are accumulated as the raw bits of p + magic in
//    wrapping int64 lanes, and count * bits(magic) is subtracted once at the
//    end, which equals the sum of RoundFixed(p) modulo 2^64.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "backends/cpu/kernels.h"
#include "core/dtype.h"

namespace shardlm::cpu {
namespace {

constexpr double kMagic = 6755399441055744.0;          // 0x1.8p52
constexpr uint64_t kMagicBits = 0x4338000000000000ull;  // bits(0x1.8p52)

inline int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

// Sum of the raw lanes minus count * bits(magic), modulo 2^64.
inline int64_t FinishFixed(__m256i acc, uint64_t count) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  const uint64_t t = static_cast<uint64_t>(_mm_cvtsi128_si64(s)) +
                     static_cast<uint64_t>(_mm_extract_epi64(s, 1));
  return static_cast<int64_t>(t - count * kMagicBits);
}

inline float HsumPs(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float F16Scalar(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

// ---------------------------------------------------------------------------
// quantize_act_q8

void QuantizeActQ8(const float* x, int64_t n, ActBlockQ8* out) {
  const int64_t nb = n / kQK;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 zero = _mm256_setzero_ps();
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i min_q = _mm256_set1_epi8(-127);
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQK;
    const __m256 v0 = _mm256_loadu_ps(xb);
    const __m256 v1 = _mm256_loadu_ps(xb + 8);
    const __m256 v2 = _mm256_loadu_ps(xb + 16);
    const __m256 v3 = _mm256_loadu_ps(xb + 24);
    // max(a, m) = a > m ? a : m with the running maximum second, as the
    // scalar loop does (a NaN never replaces it).
    __m256 m = _mm256_max_ps(_mm256_andnot_ps(sign, v0), zero);
    m = _mm256_max_ps(_mm256_andnot_ps(sign, v1), m);
    __m256 t = _mm256_max_ps(_mm256_andnot_ps(sign, v2), zero);
    t = _mm256_max_ps(_mm256_andnot_ps(sign, v3), t);
    m = _mm256_max_ps(t, m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = d;
    const __m256 idv = _mm256_set1_ps(id);
    constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, idv), kRound));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, idv), kRound));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, idv), kRound));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, idv), kRound));
    __m256i q = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    q = _mm256_max_epi8(_mm256_permutevar8x32_epi32(q, perm), min_q);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs), q);
  }
}

// ---------------------------------------------------------------------------
// Quantized helpers.

// Exact lane sums of one q8_0 block: lane j = sum of w_i * q_i, i in 4j..4j+3.
// abs(w) <= 128 and sign(q, w) in [-127, 127] (q != -128, which
// quantize_act_q8 never produces), so no int16 pair saturates.
inline __m256i LanesQ8(const BlockQ8_0* w, const ActBlockQ8* x) {
  const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w->qs));
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qs));
  const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

inline __m256i Load2x128(const void* lo, const void* hi) {
  return _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(static_cast<const __m128i*>(lo))),
      _mm_loadu_si128(static_cast<const __m128i*>(hi)), 1);
}

// Exact lane sums of two q4_0 blocks a, b in a paired layout:
//   *lo = [a lanes 0..3 | b lanes 0..3], *hi = [a lanes 4..7 | b lanes 4..7].
// (nibble - 8) * q = nibble * q - 8 * q; both maddubs are exact (|pair| <=
// 3840), and so is their int16 difference.
inline void LanesQ4Pair(const BlockQ4_0* a, const BlockQ4_0* b, const ActBlockQ8* xa,
                        const ActBlockQ8* xb, __m256i* lo, __m256i* hi) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i k8 = _mm256_set1_epi8(8);
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i v = Load2x128(a->qs, b->qs);
  const __m256i wl = _mm256_and_si256(v, m4);
  const __m256i wh = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  const __m256i xl = Load2x128(xa->qs, xb->qs);
  const __m256i xh = Load2x128(xa->qs + 16, xb->qs + 16);
  const __m256i pl = _mm256_sub_epi16(_mm256_maddubs_epi16(wl, xl), _mm256_maddubs_epi16(k8, xl));
  const __m256i ph = _mm256_sub_epi16(_mm256_maddubs_epi16(wh, xh), _mm256_maddubs_epi16(k8, xh));
  *lo = _mm256_madd_epi16(pl, ones);
  *hi = _mm256_madd_epi16(ph, ones);
}

// Exact lane sums of one q4_0 block, lanes in element order.
inline __m256i LanesQ4(const BlockQ4_0* w, const ActBlockQ8* x) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w->qs));
  const __m256i wv = _mm256_and_si256(
      _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1),
      _mm256_set1_epi8(0x0f));
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qs));
  const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(wv, xv),
                                     _mm256_maddubs_epi16(_mm256_set1_epi8(8), xv));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// f16 scales of four blocks (stride `Block`) as 4 floats.
template <typename Block>
inline __m128 WeightScales4(const Block* w) {
  const uint64_t h = uint64_t{w[0].d} | uint64_t{w[1].d} << 16 | uint64_t{w[2].d} << 32 |
                     uint64_t{w[3].d} << 48;
  return _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<int64_t>(h)));
}

inline __m128 ActScales4(const ActBlockQ8* x) {
  const __m128 a = _mm_unpacklo_ps(_mm_load_ss(&x[0].d), _mm_load_ss(&x[1].d));
  const __m128 b = _mm_unpacklo_ps(_mm_load_ss(&x[2].d), _mm_load_ss(&x[3].d));
  return _mm_movelh_ps(a, b);
}

// The exact scales d_w * (d_x * 2^30) of four blocks.
template <typename Block>
inline __m256d ExactScales4(const Block* w, const ActBlockQ8* x) {
  const __m256d dw = _mm256_cvtps_pd(WeightScales4(w));
  const __m256d dx = _mm256_mul_pd(_mm256_cvtps_pd(ActScales4(x)), _mm256_set1_pd(kFixedScale));
  return _mm256_mul_pd(dw, dx);
}


// Raw bits of fma(scale, s, magic) for the 4 int32 lane sums in `s`.
inline __m256i FixLanes(__m256d scale, __m128i s, __m256d magic) {
  return _mm256_castpd_si256(_mm256_fmadd_pd(scale, _mm256_cvtepi32_pd(s), magic));
}

inline __m128i Lo(__m256i v) { return _mm256_castsi256_si128(v); }
inline __m128i Hi(__m256i v) { return _mm256_extracti128_si256(v, 1); }

// Half-block sums of four blocks from their lane sums in element order
// (lane j = elements 4j..4j+3): [h0 of l0, l1, l2, l3 | h1 of l0, l1, l2, l3].
inline __m256i HalvesOf4(__m256i l0, __m256i l1, __m256i l2, __m256i l3) {
  return _mm256_hadd_epi32(_mm256_hadd_epi32(l0, l1), _mm256_hadd_epi32(l2, l3));
}

// The two RoundFixed(scale * s_bh) of one block from its lane sums `l` in
// element order (a plain multiply and add: the product is exact).
inline int64_t FixHalves1(double scale, __m256i l) {
  __m256i t = _mm256_hadd_epi32(l, l);
  t = _mm256_hadd_epi32(t, t);  // [h0 x 4 | h1 x 4]
  const int32_t h0 = _mm_cvtsi128_si32(Lo(t));
  const int32_t h1 = _mm_cvtsi128_si32(Hi(t));
  return WrapAdd(RoundFixed(scale * static_cast<double>(h0)),
                 RoundFixed(scale * static_cast<double>(h1)));
}

template <typename Block>
inline double ExactScaleScalar(const Block* w, const ActBlockQ8* x) {
  return static_cast<double>(F16Scalar(w->d)) * (static_cast<double>(x->d) * kFixedScale);
}

// ---------------------------------------------------------------------------
// Exact quantized dots.

int64_t DotQ8_0Exact(const BlockQ8_0* w, const ActBlockQ8* x, int64_t nb) {
  const __m256d magic = _mm256_set1_pd(kMagic);
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const __m256d sc = ExactScales4(w + b, x + b);
    const __m256i h = HalvesOf4(LanesQ8(w + b, x + b), LanesQ8(w + b + 1, x + b + 1),
                                LanesQ8(w + b + 2, x + b + 2), LanesQ8(w + b + 3, x + b + 3));
    acc0 = _mm256_add_epi64(acc0, FixLanes(sc, Lo(h), magic));
    acc1 = _mm256_add_epi64(acc1, FixLanes(sc, Hi(h), magic));
  }
  int64_t sum = FinishFixed(_mm256_add_epi64(acc0, acc1), 2 * static_cast<uint64_t>(b));
  for (; b < nb; ++b) {
    sum = WrapAdd(sum, FixHalves1(ExactScaleScalar(w + b, x + b), LanesQ8(w + b, x + b)));
  }
  return sum;
}

int64_t DotQ4_0Exact(const BlockQ4_0* w, const ActBlockQ8* x, int64_t nb) {
  const __m256d magic = _mm256_set1_pd(kMagic);
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const __m256d sc = ExactScales4(w + b, x + b);
    __m256i lo01, hi01, lo23, hi23;
    LanesQ4Pair(w + b, w + b + 1, x + b, x + b + 1, &lo01, &hi01);
    LanesQ4Pair(w + b + 2, w + b + 3, x + b + 2, x + b + 3, &lo23, &hi23);
    // [a h0, a h1, c h0, c h1 | b h0, b h1, d h0, d h1] for blocks a..d.
    const __m256i h =
        _mm256_hadd_epi32(_mm256_hadd_epi32(lo01, hi01), _mm256_hadd_epi32(lo23, hi23));
    acc0 = _mm256_add_epi64(acc0, FixLanes(_mm256_permute4x64_pd(sc, 0xA0), Lo(h), magic));
    acc1 = _mm256_add_epi64(acc1, FixLanes(_mm256_permute4x64_pd(sc, 0xF5), Hi(h), magic));
  }
  int64_t sum = FinishFixed(_mm256_add_epi64(acc0, acc1), 2 * static_cast<uint64_t>(b));
  for (; b < nb; ++b) {
    sum = WrapAdd(sum, FixHalves1(ExactScaleScalar(w + b, x + b), LanesQ4(w + b, x + b)));
  }
  return sum;
}

// ---------------------------------------------------------------------------
// Exact float dots: (double)w * xs (exact), + magic (no FMA), int64 lanes.

inline __m256i FixProd(__m256d w, const double* xs, __m256d magic) {
  return _mm256_castpd_si256(_mm256_add_pd(_mm256_mul_pd(w, _mm256_loadu_pd(xs)), magic));
}

// `Conv4(w + i)` returns 4 weights as doubles.
template <typename T, typename Conv4, typename Conv1>
inline int64_t DotFloatExact(const T* w, const double* xs, int64_t n, Conv4 conv4, Conv1 conv1) {
  const __m256d magic = _mm256_set1_pd(kMagic);
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  __m256i acc2 = _mm256_setzero_si256(), acc3 = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_add_epi64(acc0, FixProd(conv4(w + i), xs + i, magic));
    acc1 = _mm256_add_epi64(acc1, FixProd(conv4(w + i + 4), xs + i + 4, magic));
    acc2 = _mm256_add_epi64(acc2, FixProd(conv4(w + i + 8), xs + i + 8, magic));
    acc3 = _mm256_add_epi64(acc3, FixProd(conv4(w + i + 12), xs + i + 12, magic));
  }
  for (; i + 4 <= n; i += 4) {
    acc0 = _mm256_add_epi64(acc0, FixProd(conv4(w + i), xs + i, magic));
  }
  const uint64_t count = static_cast<uint64_t>(i);
  const __m256i acc = _mm256_add_epi64(_mm256_add_epi64(acc0, acc1), _mm256_add_epi64(acc2, acc3));
  int64_t sum = FinishFixed(acc, count);
  for (; i < n; ++i) sum = WrapAdd(sum, RoundFixed(static_cast<double>(conv1(w[i])) * xs[i]));
  return sum;
}

int64_t DotF32Exact(const float* w, const double* xs, int64_t n) {
  return DotFloatExact(
      w, xs, n, [](const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); },
      [](float v) { return v; });
}

int64_t DotF16Exact(const uint16_t* w, const double* xs, int64_t n) {
  return DotFloatExact(
      w, xs, n,
      [](const uint16_t* p) {
        return _mm256_cvtps_pd(
            _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
      },
      [](uint16_t h) { return F16Scalar(h); });
}

int64_t DotBF16Exact(const uint16_t* w, const double* xs, int64_t n) {
  return DotFloatExact(
      w, xs, n,
      [](const uint16_t* p) {
        const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
        return _mm256_cvtps_pd(_mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), v)));
      },
      [](uint16_t h) { return BF16ToF32(h); });
}

// ---------------------------------------------------------------------------
// Fast quantized dots.

float DotQ8_0Fast(const BlockQ8_0* w, const ActBlockQ8* x, int64_t nb) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const __m256 sc =
        _mm256_castps128_ps256(_mm_mul_ps(WeightScales4(w + b), ActScales4(x + b)));
    const __m256 s0 = _mm256_permutevar8x32_ps(sc, _mm256_set1_epi32(0));
    const __m256 s1 = _mm256_permutevar8x32_ps(sc, _mm256_set1_epi32(1));
    const __m256 s2 = _mm256_permutevar8x32_ps(sc, _mm256_set1_epi32(2));
    const __m256 s3 = _mm256_permutevar8x32_ps(sc, _mm256_set1_epi32(3));
    acc0 = _mm256_fmadd_ps(s0, _mm256_cvtepi32_ps(LanesQ8(w + b, x + b)), acc0);
    acc1 = _mm256_fmadd_ps(s1, _mm256_cvtepi32_ps(LanesQ8(w + b + 1, x + b + 1)), acc1);
    acc2 = _mm256_fmadd_ps(s2, _mm256_cvtepi32_ps(LanesQ8(w + b + 2, x + b + 2)), acc2);
    acc3 = _mm256_fmadd_ps(s3, _mm256_cvtepi32_ps(LanesQ8(w + b + 3, x + b + 3)), acc3);
  }
  for (; b < nb; ++b) {
    const __m256 s = _mm256_set1_ps(F16Scalar(w[b].d) * x[b].d);
    acc0 = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(LanesQ8(w + b, x + b)), acc0);
  }
  return HsumPs(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

// Lane sums of two q4_0 blocks folded to [a: 4 lanes | b: 4 lanes].
inline __m256i FoldedQ4Pair(const BlockQ4_0* a, const BlockQ4_0* b, const ActBlockQ8* xa,
                            const ActBlockQ8* xb) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i k8 = _mm256_set1_epi8(8);
  const __m256i v = Load2x128(a->qs, b->qs);
  const __m256i wl = _mm256_and_si256(v, m4);
  const __m256i wh = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  const __m256i xl = Load2x128(xa->qs, xb->qs);
  const __m256i xh = Load2x128(xa->qs + 16, xb->qs + 16);
  // |nibble * q pair| <= 3840, |8 * q pair| <= 2048: the int16 sums fit.
  const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(wl, xl), _mm256_maddubs_epi16(wh, xh));
  const __m256i c = _mm256_add_epi16(_mm256_maddubs_epi16(k8, xl), _mm256_maddubs_epi16(k8, xh));
  return _mm256_madd_epi16(_mm256_sub_epi16(p, c), _mm256_set1_epi16(1));
}

float DotQ4_0Fast(const BlockQ4_0* w, const ActBlockQ8* x, int64_t nb) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const __m256i idx01 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  const __m256i idx23 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const __m256 sc =
        _mm256_castps128_ps256(_mm_mul_ps(WeightScales4(w + b), ActScales4(x + b)));
    const __m256i l01 = FoldedQ4Pair(w + b, w + b + 1, x + b, x + b + 1);
    const __m256i l23 = FoldedQ4Pair(w + b + 2, w + b + 3, x + b + 2, x + b + 3);
    acc0 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(sc, idx01), _mm256_cvtepi32_ps(l01), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(sc, idx23), _mm256_cvtepi32_ps(l23), acc1);
  }
  for (; b < nb; ++b) {
    const __m256 s = _mm256_set1_ps(F16Scalar(w[b].d) * x[b].d);
    acc0 = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(LanesQ4(w + b, x + b)), acc0);
  }
  return HsumPs(_mm256_add_ps(acc0, acc1));
}

// ---------------------------------------------------------------------------
// Fast float dots: four 8-wide FMA accumulators.

template <typename T, typename Conv8, typename Conv1>
inline float DotFloatFast(const T* w, const float* x, int64_t n, Conv8 conv8, Conv1 conv1) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(conv8(w + i), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(conv8(w + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(conv8(w + i + 16), _mm256_loadu_ps(x + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(conv8(w + i + 24), _mm256_loadu_ps(x + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) {
    acc0 = _mm256_fmadd_ps(conv8(w + i), _mm256_loadu_ps(x + i), acc0);
  }
  float sum = HsumPs(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += conv1(w[i]) * x[i];
  return sum;
}

float DotF32Fast(const float* w, const float* x, int64_t n) {
  return DotFloatFast(
      w, x, n, [](const float* p) { return _mm256_loadu_ps(p); }, [](float v) { return v; });
}

float DotF16Fast(const uint16_t* w, const float* x, int64_t n) {
  return DotFloatFast(
      w, x, n,
      [](const uint16_t* p) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      },
      [](uint16_t h) { return F16Scalar(h); });
}

float DotBF16Fast(const uint16_t* w, const float* x, int64_t n) {
  return DotFloatFast(
      w, x, n,
      [](const uint16_t* p) {
        const __m256i v =
            _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      },
      [](uint16_t h) { return BF16ToF32(h); });
}

const KernelTable kAvx2Table = {
    "avx2",       QuantizeActQ8, DotQ4_0Exact, DotQ8_0Exact, DotF32Exact, DotF16Exact,
    DotBF16Exact, DotQ4_0Fast,   DotQ8_0Fast,  DotF32Fast,   DotF16Fast,  DotBF16Fast,
    LoopRowsExact<DotQ4_0Exact>, LoopRowsFast<DotQ4_0Fast>,
    nullptr,      nullptr,       nullptr,      nullptr,  // no q4_0x8 kernels
};

}  // namespace

const KernelTable* Avx2Kernels() { return &kAvx2Table; }

}  // namespace shardlm::cpu
