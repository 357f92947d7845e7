#include "gflags/gflags.h"
#include "tools/shared_flags.h"

DEFINE_string(model, "", "GGUF model file or Hugging Face model folder (default: ../shared/models/stories260K.gguf)");

namespace shardlm::cli {

std::string ModelFlag() { return FLAGS_model; }

}  // namespace shardlm::cli
