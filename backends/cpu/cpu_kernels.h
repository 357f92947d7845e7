// Scalar-portable CPU kernels with a fixed summation order (so results are
// reproducible for any thread count).
#ifndef SHARDLM_BACKENDS_CPU_CPU_KERNELS_H_
#define SHARDLM_BACKENDS_CPU_CPU_KERNELS_H_

#include <cstdint>

namespace shardlm::cpu {

// sum_i a[i] * b[i], accumulated in 8 interleaved float lanes then combined
// pairwise in a fixed order.
float DotF32(const float* a, const float* b, int64_t n);

// y += a * x
void Axpy(float a, const float* x, float* y, int64_t n);

// One query head `q` (hd floats) attending to positions t in [0, len):
// scores[t] = DotF32(q, k + t * stride, hd) * scale, softmax with
// std::exp in order t, out = sum over t (in order) of
// Axpy(p_t, v + t * stride), starting from zeros. Bit for bit that
// definition on every CPU (the AVX2 form vectorizes across the 8 lanes of
// DotF32 and across out, with the same roundings). `scores` holds len
// floats.
void AttendHead(const float* q, const float* k, const float* v, int64_t stride, int64_t len,
                int64_t hd, float scale, float* scores, float* out);

// The rotary tables of CpuBackend::Rope (and of the CUDA backend, which
// uploads them): half = rope_dim / 2, freq[k] = pow(theta, -2.0 * k /
// rope_dim), and for row i, cos_t[i * half + k] = (float)cos(positions[i] *
// freq[k]) (double math), sin_t likewise.
void RopeTables(double theta, int64_t rope_dim, const int32_t* positions, int64_t n,
                float* cos_t, float* sin_t);

}  // namespace shardlm::cpu

#endif  // SHARDLM_BACKENDS_CPU_CPU_KERNELS_H_
