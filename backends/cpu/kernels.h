// Matrix-vector kernels of the CPU backend, one table per instruction-set
// path (scalar, AVX2+FMA, AVX-512 with VNNI), chosen once at startup.
//
// Exact numerics (the contract every path implements bit for bit):
//   RoundFixed(p) = the int64 nearest to p (ties to even), computed as
//     bits(p + 0x1.8p52) - bits(0x1.8p52) on IEEE doubles (valid for
//     |p| < 2^51; beyond that every path wraps identically).
//   Float weights (f32, f16, bf16), any length n:
//     dot = sum_i RoundFixed((double)w_i * xs_i), xs_i = (double)x_i * 2^30
//     (the double product of two floats is exact).
//   Quantized weights (q8_0, q4_0) against Q8 activation blocks:
//     for block b and half-block lane h in {0, 1} covering elements
//     16h..16h+15, s_bh = sum of the 16 integer products w_i * q_i
//     (w_i = qs_i for q8_0, nibble_i - 8 for q4_0), and
//     dot = sum_bh RoundFixed(((double)d_w * ((double)d_x * 2^30)) * s_bh).
//     The product is exact in a double: the scale d_w * d_x * 2^30 has
//     <= 35 significant bits (f16 11 x float 24; no overflow or underflow
//     in double range) and |s_bh| <= 16 * 128 * 127 = 260096 < 2^18 for
//     q8_0 (a weight of -128 included; activations are never -128),
//     <= 16 * 8 * 127 = 16256 for q4_0, so it has <= 53 significant bits.
//     Hence a fused scale * s + 0x1.8p52 rounds exactly like the separate
//     multiply and add (also for inf / NaN scales).
//   The int64 sums are associative, so any split of a row (threads, nodes)
//   gives the same total; FromFixed converts a total back to float.
// Fast numerics: plain float accumulation in whatever order is quickest.
#ifndef SHARDLM_BACKENDS_CPU_KERNELS_H_
#define SHARDLM_BACKENDS_CPU_KERNELS_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dtype.h"

namespace shardlm::cpu {

inline constexpr int kFixedFracBits = 30;
inline constexpr double kFixedScale = 1073741824.0;  // 2^30

// RoundFixed of the contract above (scalar form; SIMD paths match it).
inline int64_t RoundFixed(double p) {
  const double magic = 6755399441055744.0;  // 0x1.8p52
  const double y = p + magic;
  int64_t yb, mb;
  std::memcpy(&yb, &y, 8);
  std::memcpy(&mb, &magic, 8);
  return yb - mb;
}

// A fixed-point total back to float.
inline float FromFixed(int64_t sum) {
  return static_cast<float>(static_cast<double>(sum) * (1.0 / kFixedScale));
}

// An activation block for quantized products: 32 values ~ d * qs[i].
struct ActBlockQ8 {
  float d;
  int8_t qs[kQK];
};
static_assert(sizeof(ActBlockQ8) == 36, "ActBlockQ8 layout");

// The kernels of one instruction-set path. Pointers need no alignment.
struct KernelTable {
  const char* isa;  // "scalar", "avx2", "avx512"

  // Quantizes x[0, n) (n a multiple of 32) into n/32 blocks, identically on
  // every path: amax = max|x_i| (NaN ignored), d = amax / 127.0f (IEEE
  // division), id = d != 0 ? 1.0f / d : 0, qs_i = nearbyint(x_i * id) (ties
  // to even) clamped to [-127, 127]; a NaN or out-of-range x_i * id (inf
  // input, or 1/d overflowing) gives -127. qs is never -128, which the AVX2
  // q8_0 sign trick relies on.
  void (*quantize_act_q8)(const float* x, int64_t n, ActBlockQ8* out);

  // Exact dots (contract above). Quantized: nb blocks; float: n elements.
  int64_t (*dot_q4_0_exact)(const BlockQ4_0* w, const ActBlockQ8* x, int64_t nb);
  int64_t (*dot_q8_0_exact)(const BlockQ8_0* w, const ActBlockQ8* x, int64_t nb);
  int64_t (*dot_f32_exact)(const float* w, const double* xs, int64_t n);
  int64_t (*dot_f16_exact)(const uint16_t* w, const double* xs, int64_t n);
  int64_t (*dot_bf16_exact)(const uint16_t* w, const double* xs, int64_t n);

  // Fast dots.
  float (*dot_q4_0_fast)(const BlockQ4_0* w, const ActBlockQ8* x, int64_t nb);
  float (*dot_q8_0_fast)(const BlockQ8_0* w, const ActBlockQ8* x, int64_t nb);
  float (*dot_f32_fast)(const float* w, const float* x, int64_t n);
  float (*dot_f16_fast)(const uint16_t* w, const float* x, int64_t n);
  float (*dot_bf16_fast)(const uint16_t* w, const float* x, int64_t n);

  // Multi-row q4_0 dots: rows r in [0, rows) start at w + r * row_stride
  // (bytes), each nb blocks against the same activation x; out[r] is what
  // dot_q4_0_exact / dot_q4_0_fast gives for that row (exact: bit for bit;
  // fast: the same up to float rounding order). Shares the activation work
  // between rows. Every path implements them.
  void (*dot_q4_0_exact_rows)(const void* w, size_t row_stride, int rows, const ActBlockQ8* x,
                              int64_t nb, int64_t* out);
  void (*dot_q4_0_fast_rows)(const void* w, size_t row_stride, int rows, const ActBlockQ8* x,
                             int64_t nb, float* out);

  // Multi-row q4_0 dots over rows in the q4_0x8 layout (RepackQ4_0x8Rows),
  // or nullptr where the path has none (the backend then keeps rows plain).
  // `w` is a row of the run at a multiple of kQ4x8TileRows; whole tiles of
  // the `rows` are tiles in the run, and only the run's last rows (after its
  // last whole tile) may follow them. `row_stride` is a plain row's bytes.
  // `act` holds PrepareQ4_0x8Act's form of x (q4_0x8_act_bytes(nb) bytes);
  // x itself serves the plain tail blocks. Results as the plain rows
  // entries give for the same rows (exact: bit for bit).
  size_t (*q4_0x8_act_bytes)(int64_t nb);
  void (*prepare_q4_0x8_act)(const ActBlockQ8* x, int64_t nb, void* act);
  void (*dot_q4_0x8_exact_rows)(const void* w, size_t row_stride, int rows, const void* act,
                                const ActBlockQ8* x, int64_t nb, int64_t* out);
  void (*dot_q4_0x8_fast_rows)(const void* w, size_t row_stride, int rows, const void* act,
                               const ActBlockQ8* x, int64_t nb, float* out);
};

// The q4_0x8 layout of a run of q4_0 rows: the same bytes as the plain
// rows, reordered so that SIMD loads need no shuffles and a multi-row dot
// reads one sequential stream. A q4_0x8 row holds each whole group of 8
// blocks (kQ4x8GroupBytes = 144 bytes) as the 8 f16 scales, then the 8
// blocks' 16 qs bytes in block order; the last nb % 8 blocks follow as plain
// BlockQ4_0. Rows are tiled in fours: tile t (rows 4t..4t+3) fills the bytes
// of those four plain rows with group 0 of each of its rows, then group 1 of
// each, and so on, then the four rows' tails in row order. Rows after the
// last whole tile are single q4_0x8 rows in their own places.
inline constexpr int64_t kQ4x8Blocks = 8;
inline constexpr int64_t kQ4x8GroupBytes = kQ4x8Blocks * sizeof(BlockQ4_0);
inline constexpr int64_t kQ4x8TileRows = 4;
// Writes the q4_0x8 form of the `rows` plain rows of nb blocks at `src`
// (contiguous) to `dst` (rows * nb * 18 bytes; no overlap). A run that starts
// at a whole tile of a longer run gets the same bytes as that part of it.
void RepackQ4_0x8Rows(const BlockQ4_0* src, int64_t rows, int64_t nb, void* dst);
// The plain blocks of row `r` (< rows) of a q4_0x8 run of `rows` rows.
void UnpackQ4_0x8Row(const void* src, int64_t rows, int64_t r, int64_t nb, BlockQ4_0* dst);

// Multi-row entries of a path that loop over its single-row dots.
template <int64_t (*kDot)(const BlockQ4_0*, const ActBlockQ8*, int64_t)>
void LoopRowsExact(const void* w, size_t row_stride, int rows, const ActBlockQ8* x, int64_t nb,
                   int64_t* out) {
  for (int r = 0; r < rows; ++r) {
    out[r] = kDot(reinterpret_cast<const BlockQ4_0*>(static_cast<const uint8_t*>(w) + r * row_stride),
                  x, nb);
  }
}
template <float (*kDot)(const BlockQ4_0*, const ActBlockQ8*, int64_t)>
void LoopRowsFast(const void* w, size_t row_stride, int rows, const ActBlockQ8* x, int64_t nb,
                  float* out) {
  for (int r = 0; r < rows; ++r) {
    out[r] = kDot(reinterpret_cast<const BlockQ4_0*>(static_cast<const uint8_t*>(w) + r * row_stride),
                  x, nb);
  }
}

// The table of each path; nullptr when this build lacks it.
const KernelTable* ScalarKernels();
const KernelTable* Avx2Kernels();
const KernelTable* Avx512Kernels();

// Whether the running CPU can execute a path ("scalar" always can).
bool CpuSupports(const std::string& isa);
// The paths this CPU can run, best first (e.g. {"avx512", "avx2", "scalar"}).
std::vector<std::string> SupportedIsas();
// The table for `isa` ("auto" = best supported). InvalidArgument for an
// unknown name, FailedPrecondition when the CPU lacks it.
absl::StatusOr<const KernelTable*> SelectKernels(const std::string& isa);

}  // namespace shardlm::cpu

#endif  // SHARDLM_BACKENDS_CPU_KERNELS_H_
