// Converting an F32/F16/BF16 GGUF model to Q8_0 or Q4_0, as llama.cpp's
// quantize does for the "pure" types: every 2-D matrix whose rows are whole
// 32-element blocks (token_embd.weight included) becomes the target type,
// 1-D tensors (norms) become or stay F32, anything else is copied unchanged.
// Metadata is copied in order with general.file_type updated. Data is
// streamed row by row from the mapped input: no tensor is ever held whole.
#ifndef SHARDLM_CORE_QUANTIZE_H_
#define SHARDLM_CORE_QUANTIZE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "core/gguf.h"

namespace shardlm {

// Called with (bytes of tensor data written so far, total), several times
// per large tensor and once at the end.
using QuantizeProgress = std::function<void(uint64_t done, uint64_t total)>;

struct QuantizeOptions {
  DType type = DType::kQ8_0;   // kQ8_0 or kQ4_0
  QuantizeProgress progress;  // optional
};

// What a quantization did.
struct QuantizeStats {
  int64_t tensors_quantized = 0;  // converted to the target type
  int64_t tensors_kept = 0;       // written unquantized
  bool kept_all_f32 = true;       // every unquantized tensor is F32
  uint64_t input_file_bytes = 0;
  uint64_t output_file_bytes = 0;
};

// llama.cpp's general.file_type (llama_ftype) for a model mostly of `type`:
// 0 f32, 1 f16, 2 q4_0, 7 q8_0, 32 bf16.
uint32_t LlamaFileType(DType type);

// The type `tensor` gets when a model is quantized to `target`.
DType QuantizedTensorType(const GgufTensorInfo& tensor, DType target);

// Quantizes the model at `in_path` (a GGUF file or a Hugging Face folder) into `out_path` (written as
// `out_path`.partial, renamed on success). InvalidArgument when the target
// is not q8_0/q4_0, when `out_path` is the input, or when an input tensor
// is not f32/f16/bf16 (naming it); file errors name the path.
absl::StatusOr<QuantizeStats> QuantizeModel(const std::string& in_path,
                                            const std::string& out_path,
                                            const QuantizeOptions& options);

}  // namespace shardlm

#endif  // SHARDLM_CORE_QUANTIZE_H_
