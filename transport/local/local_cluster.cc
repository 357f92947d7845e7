#include "transport/local/local_cluster.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

absl::Status WithRank(int rank, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("rank ", rank, ": ", s.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(
    const GgufFile* file, const ShardPlan& plan, const BackendFactory& make_backend,
    const ShardedEngineOptions& engine_options, const ClusterOptions& cluster_options) {
  if (cluster_options.clock == nullptr) return absl::InvalidArgumentError("cluster: no clock");
  const int world = plan.num_nodes();
  std::unique_ptr<LocalCluster> cluster(new LocalCluster());
  cluster->hub_ = LocalHub::Create(world, engine_options.clock);
  for (int rank = 0; rank < world; ++rank) {
    cluster->transports_.push_back(cluster->hub_->Endpoint(rank));
    absl::StatusOr<std::unique_ptr<Backend>> backend = make_backend(rank);
    RETURN_IF_ERROR(WithRank(rank, backend.status()));
    cluster->backends_.push_back(std::move(*backend));
    absl::StatusOr<std::unique_ptr<ShardedEngine>> engine =
        ShardedEngine::Create(file, plan, cluster->backends_[rank].get(),
                              cluster->transports_[rank].get(), engine_options);
    RETURN_IF_ERROR(WithRank(rank, engine.status()));
    cluster->engines_.push_back(std::move(*engine));
  }
  cluster->root_ = std::make_unique<ClusterRoot>(
      cluster->engines_[0].get(), cluster->transports_[0].get(), cluster_options);
  cluster->worker_status_.resize(world);
  LocalCluster* c = cluster.get();
  for (int rank = 1; rank < world; ++rank) {
    c->workers_.emplace_back([c, rank, cluster_options] {
      absl::Status s = RunClusterWorker(c->engines_[rank].get(), c->transports_[rank].get(),
                                        cluster_options);
      // A failing rank makes every other rank fail promptly rather than wait.
      if (!s.ok()) c->hub_->Shutdown();
      c->worker_status_[rank] = WithRank(rank, s);
    });
  }
  return cluster;
}

LocalCluster::~LocalCluster() { Stop().IgnoreError(); }

absl::Status LocalCluster::Stop() {
  if (stopped_) return stop_status_;
  stopped_ = true;
  if (root_ == nullptr || !root_->Stop().ok()) hub_->Shutdown();
  for (std::thread& t : workers_) t.join();
  for (const absl::Status& s : worker_status_) {
    if (!s.ok()) {
      stop_status_ = s;
      break;
    }
  }
  return stop_status_;
}

}  // namespace shardlm
