// Device layout of weight matrices. Float weights (f32, f16, bf16) keep
// GGUF's row-major layout. Quantized weights (q8_0, q4_0) are split so that
// every load is an aligned 128-bit one: all rows' quant bytes first (row r's
// blocks at r * quant_row_bytes, each block's 16 (q4_0) or 32 (q8_0) bytes
// as GGUF stores them), then all f16 block scales (row r's at r * nb), at a
// 256-byte aligned offset. Pure host code, tested without a GPU.
#ifndef SHARDLM_BACKENDS_CUDA_WEIGHT_LAYOUT_H_
#define SHARDLM_BACKENDS_CUDA_WEIGHT_LAYOUT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/dtype.h"

namespace shardlm::cuda {

struct WeightLayout {
  DType type = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  bool quantized = false;
  int64_t nb = 0;               // blocks per row (quantized)
  int64_t quant_row_bytes = 0;  // quantized: 16 * nb (q4_0) or 32 * nb (q8_0)
  int64_t scale_offset = 0;     // quantized: byte offset of the scales
  int64_t row_bytes = 0;        // float types: GGUF row bytes
  int64_t total_bytes = 0;      // device bytes of the whole matrix
};

// The layout of a rows x cols matrix of `type` (f32, f16, bf16, q8_0, q4_0);
// InvalidArgument for other types, negative sizes or cols that are not
// whole blocks.
absl::StatusOr<WeightLayout> MakeWeightLayout(DType type, int64_t rows, int64_t cols);

// Rewrites GGUF bytes (rows x RowBytes(type, cols)) into `dst`
// (layout.total_bytes) in the device layout.
void PackWeight(const WeightLayout& layout, const void* gguf, uint8_t* dst);

// The inverse: device-layout bytes back to GGUF bytes (padding dropped).
void UnpackWeight(const WeightLayout& layout, const uint8_t* packed, void* gguf);

}  // namespace shardlm::cuda

#endif  // SHARDLM_BACKENDS_CUDA_WEIGHT_LAYOUT_H_
