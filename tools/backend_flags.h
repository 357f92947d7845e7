// Flags shared by every command that computes (generate, bench, worker):
// --backend, --threads, --numerics, --isa.
#ifndef SHARDLM_TOOLS_BACKEND_FLAGS_H_
#define SHARDLM_TOOLS_BACKEND_FLAGS_H_

#include "absl/status/statusor.h"
#include "core/backend.h"

namespace shardlm::cli {

// The source file defining the shared flags, for Command::flag_files.
inline constexpr char kBackendFlagsFile[] = "tools/backend_flags.cc";

// BackendOptions from the flags; InvalidArgument for bad values.
absl::StatusOr<BackendOptions> BackendOptionsFromFlags();
// The --backend name.
std::string BackendNameFromFlags();

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_BACKEND_FLAGS_H_
