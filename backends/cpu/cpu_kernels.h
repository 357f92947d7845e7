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

}  // namespace shardlm::cpu

#endif  // SHARDLM_BACKENDS_CPU_CPU_KERNELS_H_
