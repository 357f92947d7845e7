// AVX-512 VNNI dots over q4_0 rows in the q4_0x8 layout (kernels.h). A
// group of 8 blocks is its 8 f16 scales and two 64-byte loads of qs, which
// hold the low nibbles (elements 0..15) and high nibbles (16..31) of 4
// blocks each: no shuffle is needed to line the weights up with the
// activations, which PrepareQ4_0x8Act has rearranged once per vector (and
// which the rows of a matrix share). Per group and row the plain-layout
// kernels spend ~33 vector instructions, these ~21 (fast) and ~30 (exact).
// A tile of 4 rows is read front to back as one stream, which the hardware
// prefetchers follow (measured in a bare loop, 2 threads over 512 MiB: ~20%
// more GB/s than 4 rows read side by side with software prefetch; ~3% more
// tokens/s in a whole llama3-1b decode), with bursts of software prefetch
// 4 KiB ahead of it where memory outruns the kernel (PrefetchTileAhead);
// single rows prefetch the same group of the next call's rows.
//
// Exactness (the contract of kernels.h, as in kernels_avx512_internal.h):
//  - vpdpbusd on (nibble u8) x (q s8), seeded with -8 * (sum of the 4 q),
//    gives exact int32 sums sum (nibble - 8) * q of 4 elements, each
//    |.| <= 4 * 8 * 127 = 4064;
//  - the 4 lane sums of each half-block are added by two rounds of
//    vpackssdw + vpmaddwd(1): every intermediate is at most 16256 in
//    magnitude, so the int16 packing never saturates and the sums are exact;
//  - the 16 half-block sums are rounded with fma(s, scale, 0x1.8p52) and
//    accumulated as raw bits, exactly as the plain-layout kernels do.

// GCC 12 reports its own _mm*_undefined_*() self-initialisations, inlined
// into the 512 <-> 256-bit casts and extracts, as (maybe-)uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backends/cpu/kernels.h"
#include "backends/cpu/kernels_avx512_internal.h"
#include "core/dtype.h"

namespace shardlm::cpu::avx512_internal {
namespace {

// The prepared activation of one group of 8 blocks, in 64-byte units. The
// lines fast numerics reads come first and together (7 of the 11), so that
// the activations of a long row keep fewer cache lines busy while the
// weights stream past them (measured, 8192-column rows, 2 threads: ~4% more
// GB/s than with the exact-only lines in between).
struct ActGroup {
  int8_t lo[2][64];          // half h: blocks 4h..4h+3, elements 0..15 each
  int8_t hi[2][64];          // the same, elements 16..31
  int32_t corr_fast[2][16];  // lane j: -8 * (sum of its 4 low and 4 high q)
  float d[16];               // the 8 blocks' scales, then zeros
  int32_t corr_lo[2][16];    // -8 * (sum of its 4 low q)
  int32_t corr_hi[2][16];    // -8 * (sum of its 4 high q)
};
static_assert(sizeof(ActGroup) == 11 * 64, "ActGroup layout");

size_t ActBytes(int64_t nb) { return static_cast<size_t>(nb / kQ4x8Blocks) * sizeof(ActGroup); }

void PrepareAct(const ActBlockQ8* x, int64_t nb, void* act) {
  ActGroup* out = static_cast<ActGroup*>(act);
  const __m512i ones = _mm512_set1_epi8(1);
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t g = 0; g < nb / kQ4x8Blocks; ++g) {
    ActGroup& a = out[g];
    const ActBlockQ8* blk = x + g * kQ4x8Blocks;
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        std::memcpy(&a.lo[h][16 * k], blk[4 * h + k].qs, 16);
        std::memcpy(&a.hi[h][16 * k], blk[4 * h + k].qs + 16, 16);
      }
      // Lane j: the sum of its 4 q (dpbusd of 1s against them), times -8.
      const __m512i lo = _mm512_slli_epi32(
          _mm512_dpbusd_epi32(zero, ones, _mm512_loadu_si512(a.lo[h])), 3);
      const __m512i hi = _mm512_slli_epi32(
          _mm512_dpbusd_epi32(zero, ones, _mm512_loadu_si512(a.hi[h])), 3);
      _mm512_storeu_si512(a.corr_lo[h], _mm512_sub_epi32(zero, lo));
      _mm512_storeu_si512(a.corr_hi[h], _mm512_sub_epi32(zero, hi));
      _mm512_storeu_si512(a.corr_fast[h], _mm512_sub_epi32(zero, _mm512_add_epi32(lo, hi)));
    }
    for (int k = 0; k < 16; ++k) a.d[k] = k < 8 ? blk[k].d : 0.0f;
  }
}

// The activation registers of one group: the bytes, and the seeds of the
// dpbusd sums (fast: corr_fast in c0; exact: corr_lo in c0, corr_hi in c1).
struct ActRegs {
  __m512i lo[2], hi[2], c0[2], c1[2];

  SHARDLM_AVX512_INLINE ActRegs(const ActGroup& a, bool exact) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      lo[h] = _mm512_loadu_si512(a.lo[h]);
      hi[h] = _mm512_loadu_si512(a.hi[h]);
      c0[h] = _mm512_loadu_si512(exact ? a.corr_lo[h] : a.corr_fast[h]);
      c1[h] = exact ? _mm512_loadu_si512(a.corr_hi[h]) : _mm512_setzero_si512();
    }
  }
};

// Prefetch of the same group R rows further on (the next call's rows), as
// the plain-layout R-row dots do.
SHARDLM_AVX512_INLINE void PrefetchGroup(const uint8_t* p, size_t ahead) {
  _mm_prefetch(reinterpret_cast<const char*>(p) + ahead, _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(p) + ahead + 64, _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(p) + ahead + 128, _MM_HINT_T0);
}

// A tile's stream is prefetched kTileAheadBytes ahead, kTileBurstGroups
// groups of the tile at a time (the lines those groups' bytes span, in one
// burst), at each multiple of kTileBurstGroups. Beyond the tile's end the
// bytes are the next tile's (a thread's rows are consecutive); a burst past
// the end of the run is only unused. Measured through the backend (16
// llama3-1b layers of products, 2 threads, 300 interleaved pairs): 4 KiB
// ahead, bursts of 4 groups gave 3-8% more GB/s than none while memory was
// fast (45-50 GB/s) and the same while it was the limit (33-36 GB/s);
// 3 and 6 KiB ahead gained less, bursts of 2 groups ~1%, of 8 groups -6%,
// hint T1 instead of T0 -8 to -15%.
inline constexpr int64_t kTileBurstGroups = 4;
inline constexpr size_t kTileAheadBytes = 4096;
template <int R>
SHARDLM_AVX512_INLINE void PrefetchTileAhead(const uint8_t* w, int64_t g) {
  if (g % kTileBurstGroups != 0) return;
  const char* p = reinterpret_cast<const char*>(w + g * R * kQ4x8GroupBytes) + kTileAheadBytes;
  constexpr int kLines = static_cast<int>(kTileBurstGroups * R * kQ4x8GroupBytes / 64);
#pragma GCC unroll 36
  for (int i = 0; i < kLines; ++i) _mm_prefetch(p + 64 * i, _MM_HINT_T0);
}

// Where row r (< R) keeps group g, and its plain tail: in a tile of R rows
// (kTile) or in single rows `stride` apart.
template <int R, bool kTile>
SHARDLM_AVX512_INLINE const uint8_t* GroupAt(const uint8_t* w, size_t stride, int64_t g, int r) {
  return kTile ? w + (g * R + r) * kQ4x8GroupBytes : w + r * stride + g * kQ4x8GroupBytes;
}
template <int R, bool kTile>
SHARDLM_AVX512_INLINE const BlockQ4_0* TailAt(const uint8_t* w, size_t stride, int64_t nb, int r) {
  const int64_t groups = nb / kQ4x8Blocks;
  const int64_t tail_bytes = (nb - groups * kQ4x8Blocks) * static_cast<int64_t>(sizeof(BlockQ4_0));
  return reinterpret_cast<const BlockQ4_0*>(
      kTile ? w + groups * R * kQ4x8GroupBytes + r * tail_bytes
            : w + r * stride + groups * kQ4x8GroupBytes);
}

template <int R, bool kTile>
SHARDLM_AVX512_INLINE void FastRowsR(const uint8_t* w, size_t stride, const ActGroup* act,
                                     const ActBlockQ8* x, int64_t nb, float* out) {
  const __m512i m0f = _mm512_set1_epi8(0x0f);
  // Lane j of half h takes the scale of block 4h + j / 4.
  const __m512i bidx[2] = {_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                           _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7)};
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  const int64_t groups = nb / kQ4x8Blocks;
  const size_t ahead = R * stride;
  for (int64_t g = 0; g < groups; ++g) {
    if (kTile) PrefetchTileAhead<R>(w, g);
    const ActGroup& a = act[g];
    const ActRegs x8(a, /*exact=*/false);
    const __m256 xd = _mm256_loadu_ps(a.d);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = GroupAt<R, kTile>(w, stride, g, r);
      if (!kTile) PrefetchGroup(p, ahead);
      const __m512 sc = _mm512_castps256_ps512(
          _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), xd));
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __m512i v = _mm512_loadu_si512(p + 16 + 64 * h);
        const __m512i lo = _mm512_and_si512(v, m0f);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m0f);
        const __m512i s =
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(x8.c0[h], lo, x8.lo[h]), hi, x8.hi[h]);
        const __m512 f = _mm512_cvtepi32_ps(s);
        const __m512 bs = _mm512_permutexvar_ps(bidx[h], sc);
        if (h == 0) {
          acc0[r] = _mm512_fmadd_ps(f, bs, acc0[r]);
        } else {
          acc1[r] = _mm512_fmadd_ps(f, bs, acc1[r]);
        }
      }
    }
  }
  const int64_t b = groups * kQ4x8Blocks;
  for (int r = 0; r < R; ++r) {
    float v = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
    if (b < nb) {
      v += Avx512Kernels()->dot_q4_0_fast(TailAt<R, kTile>(w, stride, nb, r), x + b, nb - b);
    }
    out[r] = v;
  }
}

template <int R, bool kTile>
SHARDLM_AVX512_INLINE void ExactRowsR(const uint8_t* w, size_t stride, const ActGroup* act,
                                      const ActBlockQ8* x, int64_t nb, int64_t* out) {
  const __m512i m0f = _mm512_set1_epi8(0x0f);
  const __m512i ones = _mm512_set1_epi16(1);
  const __m512d magic = _mm512_set1_pd(kMagic);
  // The half-block sums' blocks (see HalfBlockSums) in each accumulator.
  const __m512i idx0 = _mm512_setr_epi64(0, 0, 4, 4, 1, 1, 5, 5);
  const __m512i idx1 = _mm512_setr_epi64(2, 2, 6, 6, 3, 3, 7, 7);
  __m512i acc0[R], acc1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_si512();
  const int64_t groups = nb / kQ4x8Blocks;
  const size_t ahead = R * stride;
  for (int64_t g = 0; g < groups; ++g) {
    if (kTile) PrefetchTileAhead<R>(w, g);
    const ActGroup& a = act[g];
    const ActRegs x8(a, /*exact=*/true);
    const __m512d dx =
        _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a.d)), _mm512_set1_pd(kFixedScale));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = GroupAt<R, kTile>(w, stride, g, r);
      if (!kTile) PrefetchGroup(p, ahead);
      const __m512d sc = _mm512_mul_pd(
          _mm512_cvtps_pd(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))),
          dx);
      __m512i pair[2];
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __m512i v = _mm512_loadu_si512(p + 16 + 64 * h);
        const __m512i lo = _mm512_and_si512(v, m0f);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m0f);
        const __m512i sl = _mm512_dpbusd_epi32(x8.c0[h], lo, x8.lo[h]);
        const __m512i sh = _mm512_dpbusd_epi32(x8.c1[h], hi, x8.hi[h]);
        // 128-bit lane m: pair sums of block 4h + m's half 0, then half 1.
        pair[h] = _mm512_madd_epi16(_mm512_packs_epi32(sl, sh), ones);
      }
      // HalfBlockSums: dword 4m + t = block m (t < 2) or 4 + m (t >= 2),
      // half t % 2.
      const __m512i s = _mm512_madd_epi16(_mm512_packs_epi32(pair[0], pair[1]), ones);
      const __m512d s0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(s));
      const __m512d s1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(s, 1));
      acc0[r] = AddFixed(acc0[r], _mm512_fmadd_pd(s0, _mm512_permutexvar_pd(idx0, sc), magic));
      acc1[r] = AddFixed(acc1[r], _mm512_fmadd_pd(s1, _mm512_permutexvar_pd(idx1, sc), magic));
    }
  }
  const int64_t b = groups * kQ4x8Blocks;
  for (int r = 0; r < R; ++r) {
    uint64_t v = static_cast<uint64_t>(FinishFixed(_mm512_add_epi64(acc0[r], acc1[r]),
                                                   16 * static_cast<uint64_t>(groups)));
    if (b < nb) {
      v += static_cast<uint64_t>(
          Avx512Kernels()->dot_q4_0_exact(TailAt<R, kTile>(w, stride, nb, r), x + b, nb - b));
    }
    out[r] = static_cast<int64_t>(v);
  }
}

// Whole tiles of 4 rows, then the run's last rows 2 and 1 at a time.
template <typename T, void (*k4)(const uint8_t*, size_t, const ActGroup*, const ActBlockQ8*,
                                 int64_t, T*),
          void (*k2)(const uint8_t*, size_t, const ActGroup*, const ActBlockQ8*, int64_t, T*),
          void (*k1)(const uint8_t*, size_t, const ActGroup*, const ActBlockQ8*, int64_t, T*)>
void Rows(const void* w, size_t stride, int rows, const void* act, const ActBlockQ8* x, int64_t nb,
          T* out) {
  static_assert(kQ4x8TileRows == 4, "the tile kernels take 4 rows");
  const uint8_t* p = static_cast<const uint8_t*>(w);
  const ActGroup* a = static_cast<const ActGroup*>(act);
  int r = 0;
  for (; r + 4 <= rows; r += 4) k4(p + r * stride, stride, a, x, nb, out + r);
  for (; r + 2 <= rows; r += 2) k2(p + r * stride, stride, a, x, nb, out + r);
  if (r < rows) k1(p + r * stride, stride, a, x, nb, out + r);
}

template <int R, bool kTile>
void Fast(const uint8_t* w, size_t s, const ActGroup* a, const ActBlockQ8* x, int64_t nb, float* o) {
  FastRowsR<R, kTile>(w, s, a, x, nb, o);
}
template <int R, bool kTile>
void Exact(const uint8_t* w, size_t s, const ActGroup* a, const ActBlockQ8* x, int64_t nb,
           int64_t* o) {
  ExactRowsR<R, kTile>(w, s, a, x, nb, o);
}

}  // namespace

size_t Q4x8ActBytes(int64_t nb) { return ActBytes(nb); }
void PrepareQ4x8Act(const ActBlockQ8* x, int64_t nb, void* act) { PrepareAct(x, nb, act); }
void DotQ4x8ExactRows(const void* w, size_t stride, int rows, const void* act,
                      const ActBlockQ8* x, int64_t nb, int64_t* out) {
  Rows<int64_t, Exact<4, true>, Exact<2, false>, Exact<1, false>>(w, stride, rows, act, x, nb, out);
}
void DotQ4x8FastRows(const void* w, size_t stride, int rows, const void* act, const ActBlockQ8* x,
                     int64_t nb, float* out) {
  Rows<float, Fast<4, true>, Fast<2, false>, Fast<1, false>>(w, stride, rows, act, x, nb, out);
}

}  // namespace shardlm::cpu::avx512_internal
