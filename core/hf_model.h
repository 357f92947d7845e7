// A Hugging Face model folder (config.json, model.safetensors or sharded
// model-0000X-of-0000Y.safetensors with model.safetensors.index.json,
// tokenizer.json) described as the equivalent GGUF: llama.* metadata,
// tokenizer metadata and tensors under GGUF names, with the q/k projection
// rows permuted from Hugging Face's rotate-half RoPE layout into GGUF's
// interleaved one. The tensor bytes are read from the mapped safetensors
// files only when the GGUF is written or built in memory.
#ifndef SHARDLM_CORE_HF_MODEL_H_
#define SHARDLM_CORE_HF_MODEL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf.h"
#include "core/gguf_writer.h"

namespace shardlm {

using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

// Whether `path` is a directory holding a config.json.
bool IsHfModelDir(const std::string& path);

// A GgufWriter for the folder at `dir`, with `tokenizer` (GGUF tokenizer.*
// metadata) added after the model's. The writer keeps the safetensors files
// mapped for as long as it lives. Errors name the file and what is wrong:
// a missing config.json or shard, an unsupported architecture, a missing,
// misshapen or unsupported tensor, an unexpected tensor (such as attention
// biases the engine does not run).
absl::StatusOr<std::unique_ptr<GgufWriter>> GgufWriterFromHfDir(const std::string& dir,
                                                                GgufMetadata tokenizer);

// Row `r` of a q or k projection in GGUF's interleaved layout comes from this
// row of the Hugging Face (rotate-half) matrix, for heads of `head_dim`.
int64_t HfRopeSourceRow(int64_t r, int64_t head_dim);

}  // namespace shardlm

#endif  // SHARDLM_CORE_HF_MODEL_H_
