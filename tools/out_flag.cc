#include "gflags/gflags.h"
#include "tools/shared_flags.h"

DEFINE_string(out, "", "Output path: the GGUF file (make-model) or the cost model (sim --calibrate)");

namespace shardlm::cli {

std::string OutFlag() { return FLAGS_out; }

}  // namespace shardlm::cli
