// Cluster sessions on the simulated network, for recovery: the root probes
// which workers answer, assigns the live ones ranks in a new session
// (epoch), and each worker serves one session after another, as a TCP
// worker does. A session's transport maps its ranks to network nodes and
// tags its messages with the session's epoch, so nothing of a failed
// session leaks into the next.
#ifndef SHARDLM_SIM_SIM_SESSION_H_
#define SHARDLM_SIM_SIM_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/cluster_setup.h"
#include "core/recovering_cluster.h"
#include "core/transport.h"
#include "sim/sim_network.h"

namespace shardlm::sim {

// Control tags, outside every session (epoch 0).
inline constexpr uint32_t kProbeTag = 0x5350;
inline constexpr uint32_t kProbeAckTag = 0x5351;

// Rank r of a session is network node nodes[r] (nodes[0] is the root).
class SimSessionTransport : public Transport {
 public:
  SimSessionTransport(Transport* node_transport, int32_t epoch, std::vector<int> nodes);
  int rank() const override { return rank_; }
  int world_size() const override { return static_cast<int>(nodes_.size()); }
  absl::Status Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                    absl::Time deadline) override;
  absl::StatusOr<std::vector<uint8_t>> Recv(int peer, uint32_t tag, absl::Time deadline) override;
  const std::vector<int>& nodes() const { return nodes_; }

 private:
  absl::Status CheckPeer(int peer) const;
  Transport* node_;  // the node's own transport (epoch 0)
  int32_t epoch_;
  std::vector<int> nodes_;
  int rank_ = -1;
};

// What the root needs to start sessions.
struct SimSessionConfig {
  SimNetwork* net = nullptr;
  Transport* root_transport = nullptr;  // node 0's
  Clock* clock = nullptr;
  const ModelSource* model = nullptr;
  Backend* backend = nullptr;  // the root's
  SessionSettings settings;    // shares: one per network node
  absl::Duration probe_timeout = absl::Milliseconds(200);
  // Told the nodes and shards of every session that starts.
  std::function<void(int32_t epoch, const std::vector<int>& nodes, const NodeShard& root)>
      on_session;
  // Replays (may be null): wraps the root's transport of each session
  // (`nodes`: the network node of each rank); the wrapper is what the
  // session uses.
  std::function<std::unique_ptr<Transport>(int32_t epoch, const std::vector<int>& nodes,
                                           Transport* inner)>
      wrap_root;
};

// A SessionFactory for RecoveringCluster: each call starts a new epoch over
// the workers that answer a probe within probe_timeout.
SessionFactory SimSessionFactory(SimSessionConfig config);

// A worker's life: answers probes, serves each session it is assigned to
// (JoinClusterSession + RunClusterWorker), until its node dies or the root
// closes. `on_loaded` hears each session's shard.
void RunSimWorker(Transport* node_transport, const ModelSource* model,
                  const WorkerBackendFactory& make_backend, Clock* clock,
                  absl::Duration setup_timeout,
                  const std::function<ShardPlan(const ShardPlan&)>& plan_hook,
                  const std::function<void(int32_t epoch, const NodeShard&)>& on_loaded);

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_SIM_SESSION_H_
