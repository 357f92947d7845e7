// The kernels that take exponentials: grouped-query attention (scores,
// softmax, weighted sum of V) and SiLU-gated products. Both compute exp with
// GlibcExpf over the table uploaded by UploadExpTable, so that exact mode
// matches the CPU's std::exp bit for bit.
#include "backends/cuda/device_util.cuh"
#include "backends/cuda/kernels.h"

namespace shardlm::cuda {
namespace {

// Global, not __constant__: lanes index it divergently.
__device__ uint64_t g_exp_table[kExpTableSize];

// Thread 0's ordered float sum of s[0..len) (the CPU's softmax denominator).
__device__ float OrderedSum(const float* s, int64_t len) {
  float sum = 0.0f;
#pragma unroll 8
  for (int64_t t = 0; t < len; ++t) sum = __fadd_rn(sum, s[t]);
  return sum;
}

// One (token, query head) per block: cpu::AttendHead over cache rows
// 0..positions[i]. Scores go through a.scores (global scratch).
template <bool kExact>
__global__ void __launch_bounds__(256) AttentionKernel(AttentionArgs a) {
  extern __shared__ float q_s[];  // head_dim floats
  __shared__ float red[32];
  __shared__ float shared_inv;
  const int64_t job = blockIdx.x;
  const int64_t i = job / a.n_heads, h = job % a.n_heads;
  const int64_t hd = a.head_dim, q_cols = a.n_heads * a.head_dim;
  const int64_t len = static_cast<int64_t>(a.positions[i]) + 1;
  const int64_t kvh = (a.q_head_offset + h) / a.group - a.kv_head_offset;
  for (int64_t c = threadIdx.x; c < hd; c += blockDim.x) q_s[c] = a.q[i * q_cols + h * hd + c];
  __syncthreads();
  const float* k = a.k + kvh * hd;
  const float* v = a.v + kvh * hd;
  float* sc = a.scores + job * a.score_stride;
  float m = -__int_as_float(0x7f800000);
  for (int64_t t = threadIdx.x; t < len; t += blockDim.x) {
    const float s = __fmul_rn(OrderedDot(q_s, k + t * a.kv_stride, hd), a.scale);
    sc[t] = s;
    m = MaxLikeStd(m, s);
  }
  m = BlockReduce<true>(m, red);  // max is exact in any order
  float part = 0.0f;
  for (int64_t t = threadIdx.x; t < len; t += blockDim.x) {
    const float e = GlibcExpf(__fsub_rn(sc[t], m), g_exp_table);
    sc[t] = e;
    part += e;
  }
  float inv;
  if (kExact) {
    __syncthreads();
    if (threadIdx.x == 0) shared_inv = __fdiv_rn(1.0f, OrderedSum(sc, len));
    __syncthreads();
    inv = shared_inv;
  } else {
    inv = __fdiv_rn(1.0f, BlockReduce<false>(part, red));
  }
  for (int64_t j = threadIdx.x; j < hd; j += blockDim.x) {
    float o = 0.0f;
#pragma unroll 4
    for (int64_t t = 0; t < len; ++t) {
      o = __fadd_rn(o, __fmul_rn(__fmul_rn(sc[t], inv), v[t * a.kv_stride + j]));
    }
    a.out[i * q_cols + h * hd + j] = o;
  }
}

__global__ void SiluMulKernel(const float* gate, const float* up, int64_t count, float* out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < count;
       e += stride) {
    const float g = gate[e];
    const float denom = __fadd_rn(1.0f, GlibcExpf(-g, g_exp_table));
    out[e] = __fmul_rn(__fdiv_rn(g, denom), up[e]);
  }
}

}  // namespace

cudaError_t UploadExpTable(const uint64_t* host_table) {
  return cudaMemcpyToSymbol(g_exp_table, host_table, sizeof(uint64_t) * kExpTableSize);
}

cudaError_t LaunchAttention(const AttentionArgs& args, cudaStream_t stream) {
  if (args.n <= 0 || args.n_heads <= 0) return cudaSuccess;
  const LaunchDims d = AttentionDims(args.n_heads, args.n);
  if (!LaunchDimsValid(d)) return cudaErrorInvalidConfiguration;
  const size_t shared = args.head_dim * sizeof(float);
  if (args.exact) {
    AttentionKernel<true><<<Grid(d), d.block, shared, stream>>>(args);
  } else {
    AttentionKernel<false><<<Grid(d), d.block, shared, stream>>>(args);
  }
  return LaunchResult(d);
}

cudaError_t LaunchSiluMul(const float* gate, const float* up, int64_t count, float* out,
                          cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  const LaunchDims d = ElementwiseDims(count);
  SiluMulKernel<<<Grid(d), d.block, 0, stream>>>(gate, up, count, out);
  return LaunchResult(d);
}

}  // namespace shardlm::cuda
