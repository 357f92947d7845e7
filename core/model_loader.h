// Opens what a user's --model names: a GGUF file (memory-mapped, no copy) or
// a Hugging Face model folder (converted to the equivalent GGUF in
// anonymous memory, one copy of the weights). Either way the rest of the
// engine sees a GgufFile, so sharding, numerics, recovery and the simulator
// work unchanged on both.
#ifndef SHARDLM_CORE_MODEL_LOADER_H_
#define SHARDLM_CORE_MODEL_LOADER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/gguf.h"
#include "core/gguf_writer.h"

namespace shardlm {

// Called with (bytes converted, total) while a folder is converted.
using ModelLoadProgress = std::function<void(uint64_t done, uint64_t total)>;

// The GGUF a Hugging Face folder converts to (model and tokenizer), ready to
// Write or to build in memory. Errors name the file and the problem.
absl::StatusOr<std::unique_ptr<GgufWriter>> ConvertHfDir(const std::string& dir);

// Opens `path` as above. A folder's image is byte-for-byte the file
// `shardlm convert` writes, so both have the same SHA-256 and a cluster may
// mix them. Errors name the path.
// `memory` says how a GGUF file is loaded (a folder's image is always
// anonymous memory with huge pages).
absl::StatusOr<std::unique_ptr<GgufFile>> OpenModelFile(const std::string& path,
                                                        const ModelLoadProgress& progress = nullptr,
                                                        FileMemory memory = FileMemory::kMap);

}  // namespace shardlm

#endif  // SHARDLM_CORE_MODEL_LOADER_H_
