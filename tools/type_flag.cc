#include "tools/shared_flags.h"

#include "gflags/gflags.h"

DEFINE_string(type, "",
              "Weight type: q8_0 or q4_0 (quantize, required; convert, optional); f32, f16, bf16, q8_0 or q4_0 "
              "(make-model, default f32)");

namespace shardlm::cli {

std::string TypeFlag() { return FLAGS_type; }

}  // namespace shardlm::cli
