// Opening --model for a command: a GGUF file or a Hugging Face folder, with
// a progress line on stderr while a folder is converted.
#ifndef SHARDLM_TOOLS_MODEL_OPEN_H_
#define SHARDLM_TOOLS_MODEL_OPEN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/gguf.h"

namespace shardlm::cli {

// OpenModelFile (core/model_loader.h) with a progress line for folders.
absl::StatusOr<std::unique_ptr<GgufFile>> OpenModel(const std::string& path);

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_MODEL_OPEN_H_
