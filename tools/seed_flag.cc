#include "gflags/gflags.h"
#include "tools/shared_flags.h"

DEFINE_uint64(seed, 42, "Random seed: sampling (generate) or weights (make-model)");

namespace shardlm::cli {

uint64_t SeedFlag() { return FLAGS_seed; }

}  // namespace shardlm::cli
