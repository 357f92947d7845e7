#include "backends/cuda/weight_layout.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace shardlm::cuda {
namespace {

constexpr int64_t kScaleAlign = 256;

int64_t QuantBytesPerBlock(DType type) { return type == DType::kQ4_0 ? kQK / 2 : kQK; }
int64_t GgufBlockBytes(DType type) {
  return type == DType::kQ4_0 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
}

}  // namespace

absl::StatusOr<WeightLayout> MakeWeightLayout(DType type, int64_t rows, int64_t cols) {
  if (rows < 0 || cols <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad weight shape ", rows, " x ", cols));
  }
  WeightLayout l;
  l.type = type;
  l.rows = rows;
  l.cols = cols;
  switch (type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16: {
      absl::StatusOr<uint64_t> row_bytes = RowBytes(type, cols);
      if (!row_bytes.ok()) return row_bytes.status();
      l.row_bytes = static_cast<int64_t>(*row_bytes);
      l.total_bytes = rows * l.row_bytes;
      return l;
    }
    case DType::kQ8_0:
    case DType::kQ4_0:
      if (cols % kQK != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(DTypeName(type), " rows of ", cols, " are not whole 32-blocks"));
      }
      l.quantized = true;
      l.nb = cols / kQK;
      l.quant_row_bytes = l.nb * QuantBytesPerBlock(type);
      l.scale_offset = (rows * l.quant_row_bytes + kScaleAlign - 1) / kScaleAlign * kScaleAlign;
      l.total_bytes = l.scale_offset + rows * l.nb * static_cast<int64_t>(sizeof(uint16_t));
      return l;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("the cuda backend does not support ", DTypeName(type), " weights"));
  }
}

void PackWeight(const WeightLayout& l, const void* gguf, uint8_t* dst) {
  if (!l.quantized) {
    std::memcpy(dst, gguf, l.total_bytes);
    return;
  }
  std::memset(dst, 0, l.total_bytes);
  const auto* src = static_cast<const uint8_t*>(gguf);
  const int64_t qbytes = QuantBytesPerBlock(l.type);
  const int64_t bbytes = GgufBlockBytes(l.type);
  uint8_t* scales = dst + l.scale_offset;
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t b = 0; b < l.nb; ++b) {
      const uint8_t* block = src + (r * l.nb + b) * bbytes;
      std::memcpy(scales + (r * l.nb + b) * 2, block, 2);  // f16 d first in both layouts
      std::memcpy(dst + r * l.quant_row_bytes + b * qbytes, block + 2, qbytes);
    }
  }
}

void UnpackWeight(const WeightLayout& l, const uint8_t* packed, void* gguf) {
  if (!l.quantized) {
    std::memcpy(gguf, packed, l.total_bytes);
    return;
  }
  auto* dst = static_cast<uint8_t*>(gguf);
  const int64_t qbytes = QuantBytesPerBlock(l.type);
  const int64_t bbytes = GgufBlockBytes(l.type);
  const uint8_t* scales = packed + l.scale_offset;
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t b = 0; b < l.nb; ++b) {
      uint8_t* block = dst + (r * l.nb + b) * bbytes;
      std::memcpy(block, scales + (r * l.nb + b) * 2, 2);
      std::memcpy(block + 2, packed + r * l.quant_row_bytes + b * qbytes, qbytes);
    }
  }
}

}  // namespace shardlm::cuda
