// An in-process tensor-parallel cluster: a LocalHub, one ShardedEngine per
// rank of a ShardPlan, and ranks 1..N-1 running RunClusterWorker on threads
// of their own; the caller drives rank 0 through root(). Used by
// `generate --nodes N --transport local` and by tests.
#ifndef SHARDLM_TRANSPORT_LOCAL_LOCAL_CLUSTER_H_
#define SHARDLM_TRANSPORT_LOCAL_LOCAL_CLUSTER_H_

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/cluster_session.h"
#include "core/gguf.h"
#include "core/shard_plan.h"
#include "core/sharded_engine.h"
#include "core/transport.h"
#include "transport/local/local_transport.h"

namespace shardlm {

// Makes the backend of one rank.
using BackendFactory = std::function<absl::StatusOr<std::unique_ptr<Backend>>(int rank)>;

class LocalCluster {
 public:
  // Loads every rank's engine (errors name the rank), then starts the
  // workers. `file` must outlive the cluster. `engine_options.clock` and
  // `cluster_options.clock` are required.
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(
      const GgufFile* file, const ShardPlan& plan, const BackendFactory& make_backend,
      const ShardedEngineOptions& engine_options, const ClusterOptions& cluster_options);

  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;
  // Stop()s.
  ~LocalCluster();

  // Rank 0's side of the session.
  ClusterRoot* root() { return root_.get(); }
  LocalHub* hub() { return hub_.get(); }
  Backend* backend(int rank) { return backends_[rank].get(); }
  int num_nodes() const { return static_cast<int>(engines_.size()); }

  // Sends STOP (shutting the hub down when that fails, so that no worker is
  // left waiting) and joins the workers. Returns the first worker error
  // ("rank R: ..."), or OK. Later calls return the same status.
  absl::Status Stop();

 private:
  LocalCluster() = default;

  std::shared_ptr<LocalHub> hub_;
  std::vector<std::unique_ptr<Transport>> transports_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<ShardedEngine>> engines_;
  std::unique_ptr<ClusterRoot> root_;
  std::vector<std::thread> workers_;
  std::vector<absl::Status> worker_status_;  // index rank; written by its thread
  bool stopped_ = false;
  absl::Status stop_status_;
};

}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_LOCAL_LOCAL_CLUSTER_H_
