// Grid and block shapes of every CUDA kernel, as plain host arithmetic (no
// CUDA headers), so that they are unit-tested without a GPU.
#ifndef SHARDLM_BACKENDS_CUDA_LAUNCH_CONFIG_H_
#define SHARDLM_BACKENDS_CUDA_LAUNCH_CONFIG_H_

#include <cstdint>

namespace shardlm::cuda {

inline constexpr int kWarpSize = 32;
// Matrix products: one warp per weight row, this many warps per block.
inline constexpr int kMatWarpsPerBlock = 8;
// Threads per block of the row-wise and elementwise kernels.
inline constexpr int kRowThreads = 256;
// Largest grid.y / grid.z CUDA accepts; grid.x may reach 2^31 - 1.
inline constexpr int64_t kMaxGridYZ = 65535;
inline constexpr int64_t kMaxGridX = 2147483647;
// Elementwise kernels loop grid-stride beyond this many blocks.
inline constexpr int64_t kMaxElementwiseBlocks = 65536;

// A kernel launch shape (dim3 without CUDA): `block` threads per block.
struct LaunchDims {
  int64_t grid_x = 1;
  int64_t grid_y = 1;
  int64_t grid_z = 1;
  int block = 1;
};

// Whether CUDA can launch `d` (grid limits, 1..1024 threads).
bool LaunchDimsValid(const LaunchDims& d);

// Ceiling of a / b for a >= 0, b > 0.
inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Tokens (activation rows) one warp of a matrix product handles while it
// holds a weight block in registers: 1, 2, 4 or 8 (the largest <= n).
int TokensPerWarp(int64_t n);

// Matrix product of `rows` weight rows against `n` tokens: grid.x covers
// the rows kMatWarpsPerBlock at a time, grid.y the tokens TokensPerWarp(n)
// at a time (tokens beyond 65535 * 8 take several launches: see
// MatMulTokenChunk).
LaunchDims MatMulDims(int64_t rows, int64_t n);
// Most tokens one matrix-product launch covers.
int64_t MatMulTokenChunk(int64_t n);

// Q8 activation quantization: one warp per 32-element block of n x nb.
LaunchDims QuantizeDims(int64_t n, int64_t nb);

// One block per row (RmsNorm, Embed, StoreRows, Rope) for n rows.
LaunchDims RowDims(int64_t n);

// Elementwise over `count` values, grid-stride beyond kMaxElementwiseBlocks.
LaunchDims ElementwiseDims(int64_t count);

// Attention: one block per (token, query head), flattened into grid.x as
// token * n_heads + head.
LaunchDims AttentionDims(int64_t n_heads, int64_t n);

}  // namespace shardlm::cuda

#endif  // SHARDLM_BACKENDS_CUDA_LAUNCH_CONFIG_H_
