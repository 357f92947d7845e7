// Matrix products: Q8 activation quantization, quantized (q4_0, q8_0 with
// dp4a) and float (f32, f16, bf16) weight rows against a group of tokens.
// One warp per weight row; each weight block is loaded once (128-bit) and
// used for up to kTok tokens. Exact: every half-block (quantized) or element
// (float) term is rounded onto the 2^-30 grid and added as int64, so the
// warp's lane split and reduction order cannot change the total. Fast: float.
#include "backends/cuda/device_util.cuh"
#include "backends/cuda/kernels.h"

namespace shardlm::cuda {
namespace {

__global__ void QuantizeKernel(const float* x, int64_t x_stride, int64_t n, int64_t nb, float* d,
                               int8_t* qs) {
  const int lane = threadIdx.x & 31;
  const int64_t unit = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (unit >= n * nb) return;  // uniform per warp
  const int64_t i = unit / nb, b = unit % nb;
  const float v = x[i * x_stride + b * 32 + lane];
  const float a = fabsf(v);
  float amax = a > 0.0f ? a : 0.0f;  // NaN ignored, as the CPU's a > amax
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(0xffffffffu, amax, off);
    amax = o > amax ? o : amax;
  }
  const float dd = __fdiv_rn(amax, 127.0f);
  const float id = dd != 0.0f ? __fdiv_rn(1.0f, dd) : 0.0f;
  qs[unit * 32 + lane] = RoundToInt8(__fmul_rn(v, id));
  if (lane == 0) d[unit] = dd;
}

// Per-token accumulators of one lane.
template <bool kExact, int kTok>
struct Acc {
  unsigned long long fixed[kTok];
  float f[kTok];
  __device__ Acc() {
#pragma unroll
    for (int t = 0; t < kTok; ++t) {
      fixed[t] = 0;
      f[t] = 0.0f;
    }
  }
  // One half-block (or block, in fast mode) term: scale dw * dx times s.
  __device__ __forceinline__ void AddQuant(int t, float dw, float dx, int s) {
    if (kExact) {
      fixed[t] += static_cast<unsigned long long>(
          RoundFixed(__dmul_rn(BlockScale(dw, dx), static_cast<double>(s))));
    } else {
      f[t] += dw * dx * static_cast<float>(s);
    }
  }
  // Writes lane 0's reduced totals for row `row`.
  __device__ void Store(int lane, int64_t row, int64_t rows, int64_t tok0, int nt, float* out,
                        int64_t out_stride, int64_t* fixed_out) {
#pragma unroll
    for (int t = 0; t < kTok; ++t) {
      if (t >= nt) break;
      const int64_t i = tok0 + t;
      if (kExact) {
        const unsigned long long sum = WarpSum(fixed[t]);
        if (lane == 0) {
          const int64_t s = static_cast<int64_t>(sum);
          if (out != nullptr) out[i * out_stride + row] = FixedToFloatHD(s);
          if (fixed_out != nullptr) fixed_out[i * rows + row] = s;
        }
      } else {
        const float sum = WarpSum(f[t]);
        if (lane == 0 && out != nullptr) out[i * out_stride + row] = sum;
      }
    }
  }
};

// Signed dot of 4 packed int8 pairs, accumulated.
__device__ __forceinline__ int Dp4a(int a, int b, int c) { return __dp4a(a, b, c); }

// q4_0: lane handles whole blocks (16 quant bytes = one uint4).
template <bool kExact, int kTok>
__global__ void __launch_bounds__(256) MatMulQ4Kernel(WeightView w, ActQ8View act, int64_t n,
                                                      float* out, int64_t out_stride,
                                                      int64_t* fixed_out) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= w.rows) return;  // uniform per warp
  const int64_t tok0 = static_cast<int64_t>(blockIdx.y) * kTok;
  const int nt = static_cast<int>(min(static_cast<int64_t>(kTok), n - tok0));
  const uint4* wq = reinterpret_cast<const uint4*>(w.data) + row * w.nb;
  const uint16_t* ws = w.scales + row * w.nb;
  Acc<kExact, kTok> acc;
  // Decode (one token): unrolled, so several weight loads are in flight.
#pragma unroll(kTok <= 2 ? 4 : 1)
  for (int64_t b = lane; b < w.nb; b += 32) {
    const uint4 q = __ldg(wq + b);
    const float dw = HalfBitsToFloat(__ldg(ws + b));
    const unsigned words[4] = {q.x, q.y, q.z, q.w};
    int lo[4], hi[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      lo[k] = static_cast<int>(__vsub4(words[k] & 0x0f0f0f0fu, 0x08080808u));
      hi[k] = static_cast<int>(__vsub4((words[k] >> 4) & 0x0f0f0f0fu, 0x08080808u));
    }
#pragma unroll
    for (int t = 0; t < kTok; ++t) {
      if (t >= nt) break;
      const int64_t unit = (tok0 + t) * act.nb + b;
      const int4* xa = reinterpret_cast<const int4*>(act.qs) + unit * 2;
      const int4 x0 = __ldg(xa), x1 = __ldg(xa + 1);
      const float dx = __ldg(act.d + unit);
      int s0 = Dp4a(lo[0], x0.x, 0);
      s0 = Dp4a(lo[1], x0.y, s0);
      s0 = Dp4a(lo[2], x0.z, s0);
      s0 = Dp4a(lo[3], x0.w, s0);
      int s1 = Dp4a(hi[0], x1.x, 0);
      s1 = Dp4a(hi[1], x1.y, s1);
      s1 = Dp4a(hi[2], x1.z, s1);
      s1 = Dp4a(hi[3], x1.w, s1);
      if (kExact) {
        acc.AddQuant(t, dw, dx, s0);
        acc.AddQuant(t, dw, dx, s1);
      } else {
        acc.AddQuant(t, dw, dx, s0 + s1);
      }
    }
  }
  acc.Store(lane, row, w.rows, tok0, nt, out, out_stride, fixed_out);
}

// q8_0: lane handles half-blocks (16 quant bytes = one uint4), so a warp
// reads 512 contiguous bytes per step.
template <bool kExact, int kTok>
__global__ void __launch_bounds__(256) MatMulQ8Kernel(WeightView w, ActQ8View act, int64_t n,
                                                      float* out, int64_t out_stride,
                                                      int64_t* fixed_out) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= w.rows) return;
  const int64_t tok0 = static_cast<int64_t>(blockIdx.y) * kTok;
  const int nt = static_cast<int>(min(static_cast<int64_t>(kTok), n - tok0));
  const uint4* wq = reinterpret_cast<const uint4*>(w.data) + row * w.nb * 2;
  const uint16_t* ws = w.scales + row * w.nb;
  Acc<kExact, kTok> acc;
#pragma unroll(kTok <= 2 ? 4 : 1)
  for (int64_t u = lane; u < 2 * w.nb; u += 32) {
    const uint4 q = __ldg(wq + u);
    const int64_t b = u >> 1;
    const float dw = HalfBitsToFloat(__ldg(ws + b));
#pragma unroll
    for (int t = 0; t < kTok; ++t) {
      if (t >= nt) break;
      const int64_t unit = (tok0 + t) * act.nb + b;
      const int4 x = __ldg(reinterpret_cast<const int4*>(act.qs) + (tok0 + t) * act.nb * 2 + u);
      const float dx = __ldg(act.d + unit);
      int s = Dp4a(static_cast<int>(q.x), x.x, 0);
      s = Dp4a(static_cast<int>(q.y), x.y, s);
      s = Dp4a(static_cast<int>(q.z), x.z, s);
      s = Dp4a(static_cast<int>(q.w), x.w, s);
      acc.AddQuant(t, dw, dx, s);
    }
  }
  acc.Store(lane, row, w.rows, tok0, nt, out, out_stride, fixed_out);
}

template <WeightKind kKind>
__device__ __forceinline__ float LoadWeight(const uint8_t* row, int64_t c) {
  if (kKind == WeightKind::kF32) return __ldg(reinterpret_cast<const float*>(row) + c);
  const uint16_t h = __ldg(reinterpret_cast<const uint16_t*>(row) + c);
  return kKind == WeightKind::kF16 ? HalfBitsToFloat(h) : Bf16BitsToFloat(h);
}

// Float weights: lane handles elements lane, lane + 32, ...; exact terms are
// RoundFixed((double)w * ((double)x * 2^30)), as cpu dot_*_exact.
template <WeightKind kKind, bool kExact, int kTok>
__global__ void __launch_bounds__(256) MatMulFloatKernel(WeightView w, const float* x,
                                                         int64_t x_stride, int64_t n, float* out,
                                                         int64_t out_stride, int64_t* fixed_out) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= w.rows) return;
  const int64_t tok0 = static_cast<int64_t>(blockIdx.y) * kTok;
  const int nt = static_cast<int>(min(static_cast<int64_t>(kTok), n - tok0));
  const int64_t elem_bytes = kKind == WeightKind::kF32 ? 4 : 2;
  const uint8_t* wr = w.data + row * w.cols * elem_bytes;
  Acc<kExact, kTok> acc;
  for (int64_t c = lane; c < w.cols; c += 32) {
    const float wv = LoadWeight<kKind>(wr, c);
#pragma unroll
    for (int t = 0; t < kTok; ++t) {
      if (t >= nt) break;
      const float xv = __ldg(x + (tok0 + t) * x_stride + c);
      if (kExact) {
        const double xs = __dmul_rn(static_cast<double>(xv), kFixedScale);
        acc.fixed[t] +=
            static_cast<unsigned long long>(RoundFixed(__dmul_rn(static_cast<double>(wv), xs)));
      } else {
        acc.f[t] += wv * xv;
      }
    }
  }
  acc.Store(lane, row, w.rows, tok0, nt, out, out_stride, fixed_out);
}

struct MatMulCall {
  WeightView w;
  ActQ8View act;
  const float* x;
  int64_t x_stride;
  int64_t n;
  float* out;
  int64_t out_stride;
  int64_t* fixed;
};

template <bool kExact, int kTok>
void LaunchTyped(const MatMulCall& c, const LaunchDims& d, cudaStream_t stream) {
  const dim3 grid = Grid(d);
  switch (c.w.kind) {
    case WeightKind::kQ4_0:
      MatMulQ4Kernel<kExact, kTok><<<grid, d.block, 0, stream>>>(c.w, c.act, c.n, c.out,
                                                                 c.out_stride, c.fixed);
      break;
    case WeightKind::kQ8_0:
      MatMulQ8Kernel<kExact, kTok><<<grid, d.block, 0, stream>>>(c.w, c.act, c.n, c.out,
                                                                 c.out_stride, c.fixed);
      break;
    case WeightKind::kF32:
      MatMulFloatKernel<WeightKind::kF32, kExact, kTok><<<grid, d.block, 0, stream>>>(
          c.w, c.x, c.x_stride, c.n, c.out, c.out_stride, c.fixed);
      break;
    case WeightKind::kF16:
      MatMulFloatKernel<WeightKind::kF16, kExact, kTok><<<grid, d.block, 0, stream>>>(
          c.w, c.x, c.x_stride, c.n, c.out, c.out_stride, c.fixed);
      break;
    case WeightKind::kBF16:
      MatMulFloatKernel<WeightKind::kBF16, kExact, kTok><<<grid, d.block, 0, stream>>>(
          c.w, c.x, c.x_stride, c.n, c.out, c.out_stride, c.fixed);
      break;
  }
}

template <bool kExact>
void LaunchTokens(const MatMulCall& c, const LaunchDims& d, cudaStream_t stream) {
  switch (TokensPerWarp(c.n)) {
    case 8: return LaunchTyped<kExact, 8>(c, d, stream);
    case 4: return LaunchTyped<kExact, 4>(c, d, stream);
    case 2: return LaunchTyped<kExact, 2>(c, d, stream);
    default: return LaunchTyped<kExact, 1>(c, d, stream);
  }
}

}  // namespace

cudaError_t LaunchQuantizeActQ8(const float* x, int64_t x_stride, int64_t n, int64_t nb,
                                float* d, int8_t* qs, cudaStream_t stream) {
  if (n <= 0 || nb <= 0) return cudaSuccess;
  const LaunchDims dims = QuantizeDims(n, nb);
  if (!LaunchDimsValid(dims)) return cudaErrorInvalidConfiguration;
  QuantizeKernel<<<Grid(dims), dims.block, 0, stream>>>(x, x_stride, n, nb, d, qs);
  return LaunchResult(dims);
}

cudaError_t LaunchMatMul(const WeightView& w, const ActQ8View& act, const float* x,
                         int64_t x_stride, int64_t n, bool exact, float* out, int64_t out_stride,
                         int64_t* fixed, cudaStream_t stream) {
  if (n <= 0 || w.rows <= 0) return cudaSuccess;
  if (fixed != nullptr && !exact) return cudaErrorInvalidValue;
  const bool quantized = w.kind == WeightKind::kQ4_0 || w.kind == WeightKind::kQ8_0;
  // Token chunks of at most MatMulTokenChunk(n) (grid.y limit).
  for (int64_t begin = 0; begin < n;) {
    const int64_t count = MatMulTokenChunk(n - begin);
    MatMulCall c{w,
                 {quantized ? act.d + begin * act.nb : nullptr,
                  quantized ? act.qs + begin * act.nb * 32 : nullptr, act.nb},
                 quantized ? nullptr : x + begin * x_stride,
                 x_stride,
                 count,
                 out == nullptr ? nullptr : out + begin * out_stride,
                 out_stride,
                 fixed == nullptr ? nullptr : fixed + begin * w.rows};
    const LaunchDims dims = MatMulDims(w.rows, count);
    if (!LaunchDimsValid(dims)) return cudaErrorInvalidConfiguration;
    exact ? LaunchTokens<true>(c, dims, stream) : LaunchTokens<false>(c, dims, stream);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
    begin += count;
  }
  return cudaSuccess;
}

}  // namespace shardlm::cuda
