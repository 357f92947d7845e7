#include "tools/backend_flags.h"

#include "core/status_macros.h"
#include "gflags/gflags.h"

DEFINE_string(backend, "cpu", "Compute backend");
DEFINE_int32(threads, 0, "Compute threads (0: one per core)");
DEFINE_string(numerics, "exact",
              "exact: bit-reproducible fixed-point sums; fast: fastest float sums");
DEFINE_int32(device, 0, "GPU ordinal for --backend cuda");
DEFINE_string(isa, "auto", "CPU kernel path: auto, avx512, avx2 or scalar");
DEFINE_bool(repack, true,
            "CPU: copy q4_0 matrices into the AVX-512 kernels' own layout (faster prompts; "
            "costs a second copy of those weights in RAM); --norepack keeps the file's");

namespace shardlm::cli {

absl::StatusOr<BackendOptions> BackendOptionsFromFlags() {
  if (FLAGS_threads < 0) return absl::InvalidArgumentError("--threads must be >= 0");
  if (FLAGS_device < 0) return absl::InvalidArgumentError("--device must be >= 0");
  BackendOptions options;
  options.threads = FLAGS_threads;
  ASSIGN_OR_RETURN(options.numerics, ParseNumerics(FLAGS_numerics));
  options.isa = FLAGS_isa;
  options.repack = FLAGS_repack;
  options.device = FLAGS_device;
  return options;
}

std::string BackendNameFromFlags() { return FLAGS_backend; }

}  // namespace shardlm::cli
