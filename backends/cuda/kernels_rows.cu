// Row-wise and elementwise kernels: Embed, RmsNorm, Rope, StoreRows, Add and
// the bandwidth probe. Each reproduces CpuBackend's float operations in the
// same order (no FMA: -fmad=false and explicit _rn intrinsics).
#include <algorithm>

#include "backends/cuda/device_util.cuh"
#include "backends/cuda/kernels.h"

namespace shardlm::cuda {
namespace {

// Rows up to this many bytes are staged in shared memory by exact RmsNorm
// (the default dynamic shared-memory limit, with room for the statics).
constexpr size_t kRmsNormStageBytes = 40 * 1024;

// Element c of table row r as float, as DequantizeRow computes it
// (quantized: d * (float)q with d the f16 scale).
__device__ __forceinline__ float TableValue(const WeightView& w, int64_t r, int64_t c) {
  switch (w.kind) {
    case WeightKind::kF32:
      return reinterpret_cast<const float*>(w.data)[r * w.cols + c];
    case WeightKind::kF16:
      return HalfBitsToFloat(reinterpret_cast<const uint16_t*>(w.data)[r * w.cols + c]);
    case WeightKind::kBF16:
      return Bf16BitsToFloat(reinterpret_cast<const uint16_t*>(w.data)[r * w.cols + c]);
    case WeightKind::kQ8_0: {
      const int64_t b = c / 32;
      const float d = HalfBitsToFloat(w.scales[r * w.nb + b]);
      const int8_t q = reinterpret_cast<const int8_t*>(w.data)[(r * w.nb + b) * 32 + c % 32];
      return __fmul_rn(d, static_cast<float>(q));
    }
    case WeightKind::kQ4_0: {
      const int64_t b = c / 32, k = c % 32;
      const float d = HalfBitsToFloat(w.scales[r * w.nb + b]);
      const uint8_t byte = w.data[(r * w.nb + b) * 16 + (k % 16)];
      const int nib = k < 16 ? (byte & 0x0f) : (byte >> 4);
      return __fmul_rn(d, static_cast<float>(nib - 8));
    }
  }
  return 0.0f;
}

__global__ void EmbedKernel(WeightView table, const int32_t* tokens, float* out) {
  const int64_t i = blockIdx.x;
  const int64_t r = tokens[i];
  for (int64_t c = threadIdx.x; c < table.cols; c += blockDim.x) {
    out[i * table.cols + c] = TableValue(table, r, c);
  }
}

// scale = 1 / sqrt(ss / d + eps), then out = (x * scale) * g. Exact: ss is
// cpu::DotF32(x, x, d), its 8 ordered lanes run by threads 0..7 over the row
// staged in shared memory (`staged`: d floats fit) or read from global.
template <bool kExact>
__global__ void RmsNormKernel(const float* x, const float* g, float eps, int64_t d,
                              bool staged, float* out) {
  extern __shared__ float row_s[];
  __shared__ float partial[32];
  __shared__ float lanes[8];
  const int64_t i = blockIdx.x;
  const float* xi = x + i * d;
  float ss;
  if (kExact) {
    if (staged) {
      for (int64_t c = threadIdx.x; c < d; c += blockDim.x) row_s[c] = xi[c];
      __syncthreads();
    }
    const float* src = staged ? row_s : xi;
    if (threadIdx.x < 8) lanes[threadIdx.x] = OrderedLaneSum(src, src, d, threadIdx.x);
    __syncthreads();
    ss = LaneCombine(lanes);
  } else {
    float part = 0.0f;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) part += xi[c] * xi[c];
    ss = BlockReduce<false>(part, partial);
  }
  const float mean = __fdiv_rn(ss, static_cast<float>(d));
  const float scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(mean, eps)));
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
    out[i * d + c] = __fmul_rn(__fmul_rn(xi[c], scale), g[c]);
  }
}

__global__ void RopeKernel(float* x, int64_t cols, const float* cos_t, const float* sin_t,
                           int64_t n_heads, int64_t head_dim, int64_t half, bool interleaved) {
  const int64_t i = blockIdx.x;
  float* row = x + i * cols;
  for (int64_t idx = threadIdx.x; idx < n_heads * half; idx += blockDim.x) {
    const int64_t h = idx / half, k = idx % half;
    float* v = row + h * head_dim;
    const int64_t a = interleaved ? 2 * k : k;
    const int64_t b = interleaved ? 2 * k + 1 : k + half;
    const float c = cos_t[i * half + k], s = sin_t[i * half + k];
    const float x0 = v[a], x1 = v[b];
    v[a] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    v[b] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
  }
}

__global__ void StoreRowsKernel(const float* src, const int32_t* rows, int64_t cols, float* dst) {
  const int64_t i = blockIdx.x;
  const int64_t r = rows[i];
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[r * cols + c] = src[i * cols + c];
}

__global__ void AddKernel(const float* x, int64_t count, float* acc) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < count;
       e += stride) {
    acc[e] = __fadd_rn(acc[e], x[e]);
  }
}

__global__ void ReadProbeKernel(const uint4* src, int64_t count, uint32_t* sink) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  uint32_t h = 0;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < count;
       e += stride) {
    const uint4 v = __ldcs(src + e);  // streaming: no cache reuse
    h ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (h == 0x9e3779b9u) *sink = h;  // practically never; keeps the loads live
}

}  // namespace

cudaError_t LaunchEmbed(const WeightView& table, const int32_t* tokens, int64_t n, float* out,
                        cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const LaunchDims d = RowDims(n);
  if (!LaunchDimsValid(d)) return cudaErrorInvalidConfiguration;
  EmbedKernel<<<Grid(d), d.block, 0, stream>>>(table, tokens, out);
  return LaunchResult(d);
}

cudaError_t LaunchRmsNorm(const float* x, const float* g, float eps, int64_t n, int64_t d,
                          bool exact, float* out, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const LaunchDims dims = RowDims(n);
  if (!LaunchDimsValid(dims)) return cudaErrorInvalidConfiguration;
  if (exact) {
    const bool staged = d * sizeof(float) <= kRmsNormStageBytes;
    const size_t shared = staged ? d * sizeof(float) : 0;
    RmsNormKernel<true><<<Grid(dims), dims.block, shared, stream>>>(x, g, eps, d, staged, out);
  } else {
    RmsNormKernel<false><<<Grid(dims), dims.block, 0, stream>>>(x, g, eps, d, false, out);
  }
  return LaunchResult(dims);
}

cudaError_t LaunchRope(float* x, int64_t cols, const float* cos_t, const float* sin_t, int64_t n,
                       int64_t n_heads, int64_t head_dim, int64_t half, bool interleaved,
                       cudaStream_t stream) {
  if (n <= 0 || half <= 0) return cudaSuccess;
  const LaunchDims d = RowDims(n);
  if (!LaunchDimsValid(d)) return cudaErrorInvalidConfiguration;
  RopeKernel<<<Grid(d), d.block, 0, stream>>>(x, cols, cos_t, sin_t, n_heads, head_dim, half,
                                              interleaved);
  return LaunchResult(d);
}

cudaError_t LaunchStoreRows(const float* src, const int32_t* rows, int64_t n, int64_t cols,
                            float* dst, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const LaunchDims d = RowDims(n);
  if (!LaunchDimsValid(d)) return cudaErrorInvalidConfiguration;
  StoreRowsKernel<<<Grid(d), d.block, 0, stream>>>(src, rows, cols, dst);
  return LaunchResult(d);
}

cudaError_t LaunchAdd(const float* x, int64_t count, float* acc, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  const LaunchDims d = ElementwiseDims(count);
  AddKernel<<<Grid(d), d.block, 0, stream>>>(x, count, acc);
  return LaunchResult(d);
}

cudaError_t LaunchReadProbe(const void* src, int64_t count, uint32_t* sink, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  LaunchDims d = ElementwiseDims(count);
  d.grid_x = std::min<int64_t>(d.grid_x, 132 * 16);  // a few waves, many loads in flight each
  ReadProbeKernel<<<Grid(d), d.block, 0, stream>>>(static_cast<const uint4*>(src), count, sink);
  return LaunchResult(d);
}

}  // namespace shardlm::cuda
