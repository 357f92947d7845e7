// AVX-512 float-weight dots (f32, f16, bf16; exact and fast), referenced by
// the kernel table in kernels_avx512.cc. The numerics contract of all the
// AVX-512 kernels is described in kernels_avx512_internal.h.

// GCC 12 reports its own _mm*_undefined_*() self-initialisations, inlined
// into the 512 <-> 256-bit casts and extracts, as (maybe-)uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/kernels_avx512_internal.h"

namespace shardlm::cpu::avx512_internal {
namespace {

// The float dots prefetch the weights this far ahead (past the row's end
// too: rows of a matrix are contiguous, and prefetches never fault).
// Measured: with rows longer than ~4K elements, whose activations no longer
// fit in L1 beside the streamed weights, the hardware prefetchers alone
// reach only ~10 GB/s (f16 exact) instead of ~20.
constexpr int kPrefetchBytes = 4096;
// Prefetches the `kBytes` of weights starting kPrefetchBytes ahead of `p`.
template <int kBytes>
SHARDLM_AVX512_INLINE void PrefetchAhead(const void* p) {
  for (int k = 0; k < kBytes; k += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + kPrefetchBytes + k),
                 _MM_HINT_T0);
  }
}

// ---------------------------------------------------------------------------
// Float dots. A loader gives 8 weights as floats (operator()) or 16
// (Load16); with a mask `m`, the masked-off lanes are zero and not read.

struct F32Loader {
  static constexpr bool kWide = false;  // kWide: Load16 then split, in the exact dots
  SHARDLM_AVX512_INLINE __m256 operator()(const float* w, int64_t i) const {
    return _mm256_loadu_ps(w + i);
  }
  SHARDLM_AVX512_INLINE __m256 operator()(const float* w, int64_t i, __mmask8 m) const {
    return _mm256_maskz_loadu_ps(m, w + i);
  }
  // Two 32-byte loads: streaming from memory, measured much faster than one
  // 64-byte load here (when the rows are not 64-byte aligned).
  SHARDLM_AVX512_INLINE __m512 Load16(const float* w, int64_t i) const {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(w + i)),
                              _mm256_loadu_ps(w + i + 8), 1);
  }
  SHARDLM_AVX512_INLINE __m512 Load16(const float* w, int64_t i, __mmask16 m) const {
    return _mm512_maskz_loadu_ps(m, w + i);
  }
};

struct F16Loader {
  static constexpr bool kWide = false;  // 2 x (vcvtph2ps ymm) measured faster
  SHARDLM_AVX512_INLINE __m256 operator()(const uint16_t* w, int64_t i) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
  }
  SHARDLM_AVX512_INLINE __m256 operator()(const uint16_t* w, int64_t i, __mmask8 m) const {
    return _mm256_cvtph_ps(_mm_maskz_loadu_epi16(m, w + i));
  }
  SHARDLM_AVX512_INLINE __m512 Load16(const uint16_t* w, int64_t i) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
  }
  SHARDLM_AVX512_INLINE __m512 Load16(const uint16_t* w, int64_t i, __mmask16 m) const {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i));
  }
};

struct BF16Loader {
  static constexpr bool kWide = true;  // one vpermw per 16 (vs 2 x (pmovzx + shift))
  SHARDLM_AVX512_INLINE __m256 operator()(const uint16_t* w, int64_t i) const {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  SHARDLM_AVX512_INLINE __m256 operator()(const uint16_t* w, int64_t i, __mmask8 m) const {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_maskz_loadu_epi16(m, w + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  // Word i to the high half of dword i (the low half zeroed), one vpermw.
  SHARDLM_AVX512_INLINE __m512 Load16(const uint16_t* w, int64_t i) const {
    const __m512i idx = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0,  //
                                         7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
    const __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, idx, v));
  }
  SHARDLM_AVX512_INLINE __m512 Load16(const uint16_t* w, int64_t i, __mmask16 m) const {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
};

// Raw bits of (double)w * xs + magic for 8 elements.
SHARDLM_AVX512_INLINE __m512d Fix8(__m256 w, __m512d xs, __m512d magic) {
  return _mm512_add_pd(_mm512_mul_pd(_mm512_cvtps_pd(w), xs), magic);
}

template <typename T, typename Loader>
SHARDLM_AVX512_INLINE int64_t DotFloatExact(const T* w, const double* xs, int64_t n) {
  const Loader load;
  const __m512d magic = _mm512_set1_pd(kMagic);
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  __m512i acc2 = _mm512_setzero_si512(), acc3 = _mm512_setzero_si512();
  int64_t i = 0;
  uint64_t count = 0;  // lanes added, padding included
  // Streaming a long row, first align the weight loads to their size, so
  // none of them splits a cache line (masked lanes add exactly magic).
  constexpr uintptr_t kBytes = (Loader::kWide ? 16 : 8) * sizeof(T);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(w);
  if (n >= 256 && addr % sizeof(T) == 0 && addr % kBytes != 0) {
    const int64_t head = static_cast<int64_t>((kBytes - addr % kBytes) / sizeof(T));
    for (int64_t h = 0; h < head; h += 8) {
      const int64_t k = head - h < 8 ? head - h : 8;
      const __mmask8 m = static_cast<__mmask8>((1u << k) - 1);
      acc2 = AddFixed(acc2, Fix8(load(w, h, m), _mm512_maskz_loadu_pd(m, xs + h), magic));
      count += 8;
    }
    w += head;
    xs += head;
    n -= head;
  }
  for (; i + 32 <= n; i += 32) {
    PrefetchAhead<32 * sizeof(T)>(w + i);
    if (Loader::kWide) {
      // 16 weights converted at once, then split into halves.
      const __m512 a = load.Load16(w, i), b = load.Load16(w, i + 16);
      acc0 = AddFixed(acc0, Fix8(_mm512_castps512_ps256(a), _mm512_loadu_pd(xs + i), magic));
      acc1 = AddFixed(acc1, Fix8(_mm512_extractf32x8_ps(a, 1), _mm512_loadu_pd(xs + i + 8), magic));
      acc2 = AddFixed(acc2, Fix8(_mm512_castps512_ps256(b), _mm512_loadu_pd(xs + i + 16), magic));
      acc3 = AddFixed(acc3, Fix8(_mm512_extractf32x8_ps(b, 1), _mm512_loadu_pd(xs + i + 24), magic));
    } else {
      acc0 = AddFixed(acc0, Fix8(load(w, i), _mm512_loadu_pd(xs + i), magic));
      acc1 = AddFixed(acc1, Fix8(load(w, i + 8), _mm512_loadu_pd(xs + i + 8), magic));
      acc2 = AddFixed(acc2, Fix8(load(w, i + 16), _mm512_loadu_pd(xs + i + 16), magic));
      acc3 = AddFixed(acc3, Fix8(load(w, i + 24), _mm512_loadu_pd(xs + i + 24), magic));
    }
  }
  for (; i + 8 <= n; i += 8) {
    acc0 = AddFixed(acc0, Fix8(load(w, i), _mm512_loadu_pd(xs + i), magic));
  }
  count += static_cast<uint64_t>(i);
  if (i < n) {
    // Zero weight and xs in the masked lanes: 0 * 0 + magic = magic.
    const __mmask8 m = static_cast<__mmask8>((1u << (n - i)) - 1);
    acc1 = AddFixed(acc1, Fix8(load(w, i, m), _mm512_maskz_loadu_pd(m, xs + i), magic));
    count += 8;
  }
  const __m512i acc = _mm512_add_epi64(_mm512_add_epi64(acc0, acc1), _mm512_add_epi64(acc2, acc3));
  return FinishFixed(acc, count);
}

template <typename T, typename Loader>
SHARDLM_AVX512_INLINE float DotFloatFast(const T* w, const float* x, int64_t n) {
  const Loader load;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
  int64_t i = 0;
  // Streaming a long row, first align the weight loads (16 elements) to
  // their size, so none of them splits a cache line.
  constexpr uintptr_t kBytes = 16 * sizeof(T);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(w);
  if (n >= 256 && addr % sizeof(T) == 0 && addr % kBytes != 0) {
    const int64_t head = static_cast<int64_t>((kBytes - addr % kBytes) / sizeof(T));
    const __mmask16 m = static_cast<__mmask16>((1u << head) - 1);
    acc3 = _mm512_fmadd_ps(load.Load16(w, 0, m), _mm512_maskz_loadu_ps(m, x), acc3);
    i = head;
  }
  for (; i + 64 <= n; i += 64) {
    PrefetchAhead<64 * sizeof(T)>(w + i);
    acc0 = _mm512_fmadd_ps(load.Load16(w, i), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(load.Load16(w, i + 16), _mm512_loadu_ps(x + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(load.Load16(w, i + 32), _mm512_loadu_ps(x + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(load.Load16(w, i + 48), _mm512_loadu_ps(x + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm512_fmadd_ps(load.Load16(w, i), _mm512_loadu_ps(x + i), acc0);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc1 = _mm512_fmadd_ps(load.Load16(w, i, m), _mm512_maskz_loadu_ps(m, x + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

}  // namespace

int64_t DotF32Exact(const float* w, const double* xs, int64_t n) {
  return DotFloatExact<float, F32Loader>(w, xs, n);
}
int64_t DotF16Exact(const uint16_t* w, const double* xs, int64_t n) {
  return DotFloatExact<uint16_t, F16Loader>(w, xs, n);
}
int64_t DotBF16Exact(const uint16_t* w, const double* xs, int64_t n) {
  return DotFloatExact<uint16_t, BF16Loader>(w, xs, n);
}
float DotF32Fast(const float* w, const float* x, int64_t n) {
  return DotFloatFast<float, F32Loader>(w, x, n);
}
float DotF16Fast(const uint16_t* w, const float* x, int64_t n) {
  return DotFloatFast<uint16_t, F16Loader>(w, x, n);
}
float DotBF16Fast(const uint16_t* w, const float* x, int64_t n) {
  return DotFloatFast<uint16_t, BF16Loader>(w, x, n);
}

}  // namespace shardlm::cpu::avx512_internal
