// Starting the tensor-parallel cluster a command asked for on its flags:
// --nodes N [--shares S] --transport local (threads of this process), or
// --transport tcp --workers H:P,... [--secret-file F] (`shardlm worker`
// processes), with --wire and --allreduce. Used by generate and bench.
#ifndef SHARDLM_TOOLS_CLUSTER_LAUNCH_H_
#define SHARDLM_TOOLS_CLUSTER_LAUNCH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/cluster_session.h"
#include "core/gguf.h"

namespace shardlm::cli {

// The source file defining the cluster flags, for Command::flag_files.
inline constexpr char kClusterFlagsFile[] = "tools/cluster_launch.cc";

// A running cluster; the caller drives rank 0 through root().
class LaunchedCluster {
 public:
  virtual ~LaunchedCluster() = default;
  virtual ClusterRoot* root() = 0;
  // Ends the session on every node (workers go back to waiting for a root).
  virtual absl::Status Stop() = 0;
  // "<rank 0 backend> | nodes N (shares ...) over <transport>".
  const std::string& describe() const { return describe_; }
  int nodes() const { return nodes_; }

 protected:
  std::string describe_;
  int nodes_ = 1;
};

// The share vector the flags ask for (one entry: no cluster). Checks the
// flags against each other: --shares vs --nodes vs --workers, --transport.
absl::StatusOr<std::vector<int>> ClusterSharesFromFlags();

// Starts the cluster of `shares` (more than one) for the model at `path`
// (already opened as `file`, which must outlive the cluster), with a KV
// cache of `max_seq_len` tokens (0: the model's, capped). Each local
// node gets backend_options.threads / nodes threads; TCP workers use their
// own --threads. Progress of hashing and weight streaming goes to stderr.
absl::StatusOr<std::unique_ptr<LaunchedCluster>> LaunchClusterFromFlags(
    const std::string& path, const GgufFile& file, const std::vector<int>& shares,
    BackendOptions backend_options, int64_t max_seq_len, RealClock* clock);

// Prints, per node, per token since `before` (both from CollectStats):
// compute ms, sync ms, bytes sent and received.
void PrintTrafficTable(const std::vector<NodeTraffic>& before,
                       const std::vector<NodeTraffic>& after, int64_t tokens, const char* what);

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_CLUSTER_LAUNCH_H_
