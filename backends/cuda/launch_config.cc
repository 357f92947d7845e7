#include "backends/cuda/launch_config.h"

#include <algorithm>

namespace shardlm::cuda {

bool LaunchDimsValid(const LaunchDims& d) {
  return d.grid_x >= 1 && d.grid_x <= kMaxGridX && d.grid_y >= 1 && d.grid_y <= kMaxGridYZ &&
         d.grid_z >= 1 && d.grid_z <= kMaxGridYZ && d.block >= 1 && d.block <= 1024;
}

int TokensPerWarp(int64_t n) {
  if (n >= 8) return 8;
  if (n >= 4) return 4;
  if (n >= 2) return 2;
  return 1;
}

int64_t MatMulTokenChunk(int64_t n) { return std::min(n, kMaxGridYZ * TokensPerWarp(n)); }

LaunchDims MatMulDims(int64_t rows, int64_t n) {
  LaunchDims d;
  d.block = kMatWarpsPerBlock * kWarpSize;
  d.grid_x = std::max<int64_t>(1, CeilDiv(rows, kMatWarpsPerBlock));
  d.grid_y = std::max<int64_t>(1, CeilDiv(MatMulTokenChunk(n), TokensPerWarp(n)));
  return d;
}

LaunchDims QuantizeDims(int64_t n, int64_t nb) {
  constexpr int kWarps = kRowThreads / kWarpSize;
  LaunchDims d;
  d.block = kRowThreads;
  d.grid_x = std::max<int64_t>(1, CeilDiv(n * nb, kWarps));
  return d;
}

LaunchDims RowDims(int64_t n) {
  LaunchDims d;
  d.block = kRowThreads;
  d.grid_x = std::max<int64_t>(1, n);
  return d;
}

LaunchDims ElementwiseDims(int64_t count) {
  LaunchDims d;
  d.block = kRowThreads;
  d.grid_x = std::clamp<int64_t>(CeilDiv(count, kRowThreads), 1, kMaxElementwiseBlocks);
  return d;
}

LaunchDims AttentionDims(int64_t n_heads, int64_t n) {
  LaunchDims d;
  d.block = kRowThreads;
  d.grid_x = std::max<int64_t>(1, n_heads * n);
  return d;
}

}  // namespace shardlm::cuda
