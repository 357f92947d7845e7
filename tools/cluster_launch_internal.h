// What the transports' launchers in tools/ share (not for commands: they
// use tools/cluster_launch.h).
#ifndef SHARDLM_TOOLS_CLUSTER_LAUNCH_INTERNAL_H_
#define SHARDLM_TOOLS_CLUSTER_LAUNCH_INTERNAL_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/cluster_setup.h"
#include "core/run_recorder.h"
#include "tools/cluster_launch.h"
#include "tools/progress.h"

namespace shardlm::cli {

// Opens and hashes `path`, showing progress on stderr.
absl::StatusOr<ModelSource> HashModel(const std::string& path,
                                      std::shared_ptr<const GgufFile> file);

// The recorder --record asks for (null without it).
std::unique_ptr<RunRecorder> RecorderFromFlags(const ModelSource& model,
                                               const SessionSettings& settings);

// How the root over a remote transport names rank r ("rank 2 (host:port)").
using RankName = std::function<std::string(int rank)>;

// One progress bar per rank while weights stream; cleared on destruction.
class WeightBars {
 public:
  explicit WeightBars(RankName rank_name) : rank_name_(std::move(rank_name)) {}
  ~WeightBars();
  // What StartClusterRoot reports progress to.
  WeightProgress Callback();

 private:
  RankName rank_name_;
  std::map<int, std::unique_ptr<ProgressLine>> bars_;
};

// Rank 0 of a TCP cluster of `shardlm worker` processes (--workers), with
// recovery from lost workers (tools/tcp_launch.cc).
absl::StatusOr<std::unique_ptr<LaunchedCluster>> LaunchTcp(const std::string& path,
                                                           std::shared_ptr<const GgufFile> file,
                                                           const BackendOptions& backend_options,
                                                           const SessionSettings& settings,
                                                           RealClock* clock);

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_CLUSTER_LAUNCH_INTERNAL_H_
