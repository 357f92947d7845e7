// Device helpers shared by the kernels_*.cu files (header-only: every .cu is
// compiled on its own, without relocatable device code).
#ifndef SHARDLM_BACKENDS_CUDA_DEVICE_UTIL_CUH_
#define SHARDLM_BACKENDS_CUDA_DEVICE_UTIL_CUH_

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/launch_config.h"
#include "backends/cuda/numerics.h"

namespace shardlm::cuda {

inline dim3 Grid(const LaunchDims& d) {
  return dim3(static_cast<unsigned>(d.grid_x), static_cast<unsigned>(d.grid_y),
              static_cast<unsigned>(d.grid_z));
}

// The launch error of the kernel just enqueued (invalid shapes included).
inline cudaError_t LaunchResult(const LaunchDims& d) {
  if (!LaunchDimsValid(d)) return cudaErrorInvalidConfiguration;
  return cudaGetLastError();
}

// IEEE half / bfloat16 bits to float (exact, as F16ToF32 / BF16ToF32).
__device__ __forceinline__ float HalfBitsToFloat(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ float Bf16BitsToFloat(uint16_t h) {
  return __uint_as_float(static_cast<uint32_t>(h) << 16);
}

__device__ __forceinline__ float WarpSum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ unsigned long long WarpSum(unsigned long long v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// The larger as std::max(a, b) picks it ((a < b) ? b : a): NaN never wins
// over a number already held.
__device__ __forceinline__ float MaxLikeStd(float a, float b) { return (a < b) ? b : a; }

// Block-wide reduction of one float per thread (blockDim.x a multiple of 32,
// at most 1024); every thread gets the result. kMax: MaxLikeStd, else sum.
template <bool kMax>
__device__ float BlockReduce(float v, float* shared32) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(0xffffffffu, v, off);
    v = kMax ? MaxLikeStd(v, o) : v + o;
  }
  __syncthreads();  // shared32 may still be read by a previous reduction
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = lane < warps ? shared32[lane] : (kMax ? -__int_as_float(0x7f800000) : 0.0f);
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(0xffffffffu, v, off);
    v = kMax ? MaxLikeStd(v, o) : v + o;
  }
  return v;
}

// cpu::DotF32 bit for bit: element e accumulates into lane e % 8 in order
// (separate multiply and add), lanes combined as
// ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)).
__device__ __forceinline__ float OrderedDot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float pa[8], pb[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      pa[j] = a[i + j];
      pb[j] = b[i + j];
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[j] = __fadd_rn(acc[j], __fmul_rn(pa[j], pb[j]));
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    if (i + j < n) acc[j] = __fadd_rn(acc[j], __fmul_rn(a[i + j], b[i + j]));
  }
  return __fadd_rn(__fadd_rn(__fadd_rn(acc[0], acc[4]), __fadd_rn(acc[1], acc[5])),
                   __fadd_rn(__fadd_rn(acc[2], acc[6]), __fadd_rn(acc[3], acc[7])));
}

// Lane j (0..7) of cpu::DotF32: the ordered float sum of a[e] * b[e] over
// e = j, j + 8, ... < n. LaneCombine joins the 8 lanes as DotF32 does.
__device__ __forceinline__ float OrderedLaneSum(const float* a, const float* b, int64_t n,
                                                int j) {
  float acc = 0.0f;
#pragma unroll 8
  for (int64_t e = j; e < n; e += 8) acc = __fadd_rn(acc, __fmul_rn(a[e], b[e]));
  return acc;
}
__device__ __forceinline__ float LaneCombine(const float* l) {
  return __fadd_rn(__fadd_rn(__fadd_rn(l[0], l[4]), __fadd_rn(l[1], l[5])),
                   __fadd_rn(__fadd_rn(l[2], l[6]), __fadd_rn(l[3], l[7])));
}

}  // namespace shardlm::cuda

#endif  // SHARDLM_BACKENDS_CUDA_DEVICE_UTIL_CUH_
