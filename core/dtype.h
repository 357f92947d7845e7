// Tensor element types and quantization block layouts, identical to GGUF/ggml.
#ifndef SHARDLM_CORE_DTYPE_H_
#define SHARDLM_CORE_DTYPE_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shardlm {

// ggml_type numbering, as stored in GGUF tensor infos.
enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
};

// Layout of one ggml type: `block_size` elements take `type_size` bytes.
struct DTypeInfo {
  const char* name;
  int64_t block_size;
  int64_t type_size;
  bool compute_supported;  // shardlm can compute with it (F32/F16/BF16/Q8_0/Q4_0).
};

// Layout of `raw` if it is a known ggml type; InvalidArgument otherwise.
absl::StatusOr<DTypeInfo> GetDTypeInfo(uint32_t raw);
// Layout of a known type (never fails for enumerators above).
const DTypeInfo& Info(DType type);
// Lower-case name ("f32", "q8_0").
std::string DTypeName(DType type);
// Parses a lower- or upper-case name among the compute-supported types.
absl::StatusOr<DType> ParseDType(absl::string_view name);

// Bytes taken by `n` elements of `type`; InvalidArgument if `n` is not a
// multiple of the block size or the size overflows.
absl::StatusOr<uint64_t> RowBytes(DType type, int64_t n);

inline constexpr int kQK = 32;  // Elements per Q8_0 / Q4_0 block.

#pragma pack(push, 1)
// GGUF Q8_0 block: value[i] = d * qs[i].
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQK];
};
// GGUF Q4_0 block: value[i] = d * ((nibble_i) - 8), elements 0..15 in the low
// nibbles of qs[0..15], elements 16..31 in the high nibbles.
struct BlockQ4_0 {
  uint16_t d;  // f16 scale
  uint8_t qs[kQK / 2];
};
#pragma pack(pop)
static_assert(sizeof(BlockQ8_0) == 34, "GGUF Q8_0 layout");
static_assert(sizeof(BlockQ4_0) == 18, "GGUF Q4_0 layout");

// IEEE half <-> float, round-to-nearest-even, with subnormals, inf and NaN.
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
// bfloat16 <-> float (round-to-nearest-even; NaN stays NaN).
inline float BF16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint16_t F32ToBF16(float f);

// Converts `n` elements of `type` at `src` to float. `n` must be a multiple
// of the block size; only compute-supported types.
absl::Status DequantizeRow(DType type, const void* src, int64_t n, float* dst);
// Encodes `n` floats as `type` (F32/F16/BF16/Q8_0/Q4_0) into `dst`, which
// must hold RowBytes(type, n). Quantization follows ggml's reference rounding.
absl::Status QuantizeRow(DType type, const float* src, int64_t n, void* dst);

}  // namespace shardlm

#endif  // SHARDLM_CORE_DTYPE_H_
