// The portable kernel path: the literal definition of the exact-numerics
// contract in kernels.h, written as plain loops. Every SIMD path must match
// the exact dots and quantize_act_q8 of this file bit for bit.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "backends/cpu/kernels.h"
#include "core/dtype.h"

namespace shardlm::cpu {
namespace {

// int64 sums wrap (two's complement) identically on every path; adding as
// uint64 keeps that defined behaviour in C++.
inline int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

// nearbyint(v) to int8 as the SIMD paths do it (cvtps2dq, saturating packs,
// then max with -127): a value outside the int32 range or NaN becomes
// INT32_MIN, and the result is clamped to [-127, 127]. For finite inputs with
// a finite id, |x * id| <= 127 always and this is plain nearbyint; the clamp
// only fixes the degenerate cases (NaN input, or amax so tiny that 1/d
// overflows) and guarantees that no activation is -128, which the SIMD dots
// rely on.
inline int8_t RoundToInt8(float v) {
  const float r = std::nearbyint(v);
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

void QuantizeActQ8(const float* x, int64_t n, ActBlockQ8* out) {
  const int64_t nb = n / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQK;
    float amax = 0.0f;
    for (int i = 0; i < kQK; ++i) {
      const float a = std::fabs(xb[i]);
      if (a > amax) amax = a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = d;
    for (int i = 0; i < kQK; ++i) out[b].qs[i] = RoundToInt8(xb[i] * id);
  }
}

// The per-block scale of the quantized contract: d_w * (d_x * 2^30), exact.
inline double BlockScale(uint16_t dw, float dx) {
  return static_cast<double>(F16ToF32(dw)) * (static_cast<double>(dx) * kFixedScale);
}

int64_t DotQ4_0Exact(const BlockQ4_0* w, const ActBlockQ8* x, int64_t nb) {
  int64_t sum = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const double scale = BlockScale(w[b].d, x[b].d);
    for (int h = 0; h < 2; ++h) {
      int32_t s = 0;
      for (int i = 16 * h; i < 16 * h + 16; ++i) {
        const int32_t wi =
            i < kQK / 2 ? (w[b].qs[i] & 0x0f) - 8 : (w[b].qs[i - kQK / 2] >> 4) - 8;
        s += wi * x[b].qs[i];
      }
      sum = WrapAdd(sum, RoundFixed(scale * static_cast<double>(s)));
    }
  }
  return sum;
}

int64_t DotQ8_0Exact(const BlockQ8_0* w, const ActBlockQ8* x, int64_t nb) {
  int64_t sum = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const double scale = BlockScale(w[b].d, x[b].d);
    for (int h = 0; h < 2; ++h) {
      int32_t s = 0;
      for (int i = 16 * h; i < 16 * h + 16; ++i) s += int32_t{w[b].qs[i]} * x[b].qs[i];
      sum = WrapAdd(sum, RoundFixed(scale * static_cast<double>(s)));
    }
  }
  return sum;
}

int64_t DotF32Exact(const float* w, const double* xs, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum = WrapAdd(sum, RoundFixed(static_cast<double>(w[i]) * xs[i]));
  }
  return sum;
}

int64_t DotF16Exact(const uint16_t* w, const double* xs, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum = WrapAdd(sum, RoundFixed(static_cast<double>(F16ToF32(w[i])) * xs[i]));
  }
  return sum;
}

int64_t DotBF16Exact(const uint16_t* w, const double* xs, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum = WrapAdd(sum, RoundFixed(static_cast<double>(BF16ToF32(w[i])) * xs[i]));
  }
  return sum;
}

float DotQ4_0Fast(const BlockQ4_0* w, const ActBlockQ8* x, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t s = 0;
    for (int i = 0; i < kQK / 2; ++i) {
      s += ((w[b].qs[i] & 0x0f) - 8) * x[b].qs[i];
      s += ((w[b].qs[i] >> 4) - 8) * x[b].qs[i + kQK / 2];
    }
    sum += F16ToF32(w[b].d) * x[b].d * static_cast<float>(s);
  }
  return sum;
}

float DotQ8_0Fast(const BlockQ8_0* w, const ActBlockQ8* x, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t s = 0;
    for (int i = 0; i < kQK; ++i) s += int32_t{w[b].qs[i]} * x[b].qs[i];
    sum += F16ToF32(w[b].d) * x[b].d * static_cast<float>(s);
  }
  return sum;
}

float DotF32Fast(const float* w, const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

float DotF16Fast(const uint16_t* w, const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += F16ToF32(w[i]) * x[i];
  return sum;
}

float DotBF16Fast(const uint16_t* w, const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += BF16ToF32(w[i]) * x[i];
  return sum;
}

const KernelTable kScalarTable = {
    "scalar",     QuantizeActQ8, DotQ4_0Exact, DotQ8_0Exact, DotF32Exact, DotF16Exact,
    DotBF16Exact, DotQ4_0Fast,   DotQ8_0Fast,  DotF32Fast,   DotF16Fast,  DotBF16Fast,
    LoopRowsExact<DotQ4_0Exact>, LoopRowsFast<DotQ4_0Fast>,
    nullptr,      nullptr,       nullptr,      nullptr,  // no q4_0x8 kernels
};

}  // namespace

const KernelTable* ScalarKernels() { return &kScalarTable; }

namespace {

// The 144 bytes of one q4_0x8 group from 8 plain blocks, and back.
void PackGroup(const BlockQ4_0* src, uint8_t* out) {
  for (int64_t k = 0; k < kQ4x8Blocks; ++k) {
    std::memcpy(out + 2 * k, &src[k].d, 2);
    std::memcpy(out + 2 * kQ4x8Blocks + 16 * k, src[k].qs, 16);
  }
}

void UnpackGroup(const uint8_t* in, BlockQ4_0* dst) {
  for (int64_t k = 0; k < kQ4x8Blocks; ++k) {
    std::memcpy(&dst[k].d, in + 2 * k, 2);
    std::memcpy(dst[k].qs, in + 2 * kQ4x8Blocks + 16 * k, 16);
  }
}

// Row r of a run of `rows` rows: where its tile starts (in rows), the
// tile's row count (a row after the last whole tile is a tile of one), and
// its place in the tile.
struct TilePlace {
  int64_t first, tile_rows, i;
};
TilePlace PlaceOf(int64_t rows, int64_t r) {
  if (r < rows / kQ4x8TileRows * kQ4x8TileRows) {
    return {r - r % kQ4x8TileRows, kQ4x8TileRows, r % kQ4x8TileRows};
  }
  return {r, 1, 0};
}

// Offsets, from the start of a tile, of group g and of the plain tail
// blocks of the row at `at` in it.
size_t GroupOffset(const TilePlace& at, int64_t g) {
  return (g * at.tile_rows + at.i) * kQ4x8GroupBytes;
}
size_t TailOffset(const TilePlace& at, int64_t nb) {
  const int64_t groups = nb / kQ4x8Blocks;
  return groups * at.tile_rows * kQ4x8GroupBytes +
         at.i * (nb - groups * kQ4x8Blocks) * sizeof(BlockQ4_0);
}

}  // namespace

void RepackQ4_0x8Rows(const BlockQ4_0* src, int64_t rows, int64_t nb, void* dst) {
  const int64_t groups = nb / kQ4x8Blocks, tail = nb - groups * kQ4x8Blocks;
  const size_t row_bytes = nb * sizeof(BlockQ4_0);
  for (int64_t r = 0; r < rows; ++r) {
    const TilePlace at = PlaceOf(rows, r);
    const BlockQ4_0* row = src + r * nb;
    uint8_t* tile = static_cast<uint8_t*>(dst) + at.first * row_bytes;
    for (int64_t g = 0; g < groups; ++g) PackGroup(row + g * kQ4x8Blocks, tile + GroupOffset(at, g));
    std::memcpy(tile + TailOffset(at, nb), row + groups * kQ4x8Blocks, tail * sizeof(BlockQ4_0));
  }
}

void UnpackQ4_0x8Row(const void* src, int64_t rows, int64_t r, int64_t nb, BlockQ4_0* dst) {
  const int64_t groups = nb / kQ4x8Blocks, tail = nb - groups * kQ4x8Blocks;
  const TilePlace at = PlaceOf(rows, r);
  const uint8_t* tile = static_cast<const uint8_t*>(src) + at.first * nb * sizeof(BlockQ4_0);
  for (int64_t g = 0; g < groups; ++g) UnpackGroup(tile + GroupOffset(at, g), dst + g * kQ4x8Blocks);
  std::memcpy(dst + groups * kQ4x8Blocks, tile + TailOffset(at, nb), tail * sizeof(BlockQ4_0));
}

}  // namespace shardlm::cpu
