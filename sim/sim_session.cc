#include "sim/sim_session.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/cluster_session.h"
#include "core/status_macros.h"

namespace shardlm::sim {
namespace {

uint32_t SessionTag(int32_t epoch, uint32_t tag) {
  return (static_cast<uint32_t>(epoch) << 16) | (tag & 0xffff);
}

// Probe and assignment records: int32 epoch, then (assignment) the nodes.
std::vector<uint8_t> Encode(int32_t epoch, const std::vector<int>& nodes) {
  std::vector<uint8_t> b(4 * (1 + nodes.size()));
  std::memcpy(b.data(), &epoch, 4);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const int32_t n = nodes[i];
    std::memcpy(&b[4 * (i + 1)], &n, 4);
  }
  return b;
}

bool Decode(const std::vector<uint8_t>& b, int32_t* epoch, std::vector<int>* nodes) {
  if (b.size() < 4 || b.size() % 4 != 0) return false;
  std::memcpy(epoch, b.data(), 4);
  nodes->resize(b.size() / 4 - 1);
  for (size_t i = 0; i < nodes->size(); ++i) {
    int32_t n;
    std::memcpy(&n, &b[4 * (i + 1)], 4);
    (*nodes)[i] = n;
  }
  return true;
}

class SimSessionHandle : public ClusterSessionHandle {
 public:
  SimSessionHandle(SimNetwork* net, std::unique_ptr<SimSessionTransport> transport,
                   std::unique_ptr<Transport> wrapper, RootSession session,
                   const ClusterOptions& options, int32_t epoch)
      : net_(net), transport_(std::move(transport)), wrapper_(std::move(wrapper)),
        session_(std::move(session)),
        root_(session_.engine.get(), wrapper_ ? wrapper_.get() : transport_.get(), options),
        epoch_(epoch) {}
  ClusterRoot* root() override { return &root_; }
  int nodes() const override { return transport_->world_size(); }
  int64_t weight_bytes() const override { return session_.streamed_bytes; }
  void Abort() override {
    for (size_t r = 1; r < transport_->nodes().size(); ++r) {
      net_->AbortEpoch(transport_->nodes()[r], epoch_);
    }
  }
  absl::Status Stop() override { return root_.Stop(); }

 private:
  SimNetwork* net_;
  std::unique_ptr<SimSessionTransport> transport_;
  std::unique_ptr<Transport> wrapper_;  // replays only
  RootSession session_;
  ClusterRoot root_;
  int32_t epoch_;
};

// The workers that answer a probe for `epoch` in time, node order.
std::vector<int> ProbeWorkers(const SimSessionConfig& c, int32_t epoch) {
  std::vector<int> asked;
  for (int node = 1; node < c.net->nodes(); ++node) {
    if (c.root_transport->Send(node, kProbeTag, Encode(epoch, {}), absl::InfiniteFuture()).ok()) {
      asked.push_back(node);
    }
  }
  std::vector<int> alive = {0};
  const absl::Time deadline = c.clock->Now() + c.probe_timeout;
  for (int node : asked) {
    for (;;) {  // skip stale answers to earlier probes
      auto ack = c.root_transport->Recv(node, kProbeAckTag, deadline);
      int32_t got;
      std::vector<int> unused;
      if (!ack.ok() || !Decode(*ack, &got, &unused)) break;
      if (got == epoch) {
        alive.push_back(node);
        break;
      }
    }
  }
  return alive;
}

}  // namespace

SimSessionTransport::SimSessionTransport(Transport* node_transport, int32_t epoch,
                                         std::vector<int> nodes)
    : node_(node_transport), epoch_(epoch), nodes_(std::move(nodes)) {
  const auto it = std::find(nodes_.begin(), nodes_.end(), node_->rank());
  rank_ = it == nodes_.end() ? -1 : static_cast<int>(it - nodes_.begin());
}

absl::Status SimSessionTransport::CheckPeer(int peer) const {
  if (peer < 0 || peer >= world_size()) {
    return absl::InvalidArgumentError(absl::StrCat("sim session: no rank ", peer));
  }
  return absl::OkStatus();
}

absl::Status SimSessionTransport::Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                                       absl::Time deadline) {
  RETURN_IF_ERROR(CheckPeer(peer));
  return node_->Send(nodes_[peer], SessionTag(epoch_, tag), data, deadline);
}

absl::StatusOr<std::vector<uint8_t>> SimSessionTransport::Recv(int peer, uint32_t tag,
                                                               absl::Time deadline) {
  RETURN_IF_ERROR(CheckPeer(peer));
  return node_->Recv(nodes_[peer], SessionTag(epoch_, tag), deadline);
}

SessionFactory SimSessionFactory(SimSessionConfig config) {
  auto epoch = std::make_shared<int32_t>(0);
  return [config, epoch]() -> absl::StatusOr<std::unique_ptr<ClusterSessionHandle>> {
    const int32_t e = ++*epoch;
    config.net->BeginEpoch(e);
    const std::vector<int> nodes = ProbeWorkers(config, e);
    for (size_t r = 1; r < nodes.size(); ++r) {
      config.root_transport->Send(nodes[r], kProbeTag, Encode(e, nodes), absl::InfiniteFuture())
          .IgnoreError();  // a worker lost now fails the session setup below
    }
    auto transport = std::make_unique<SimSessionTransport>(config.root_transport, e, nodes);
    std::unique_ptr<Transport> wrapper =
        config.wrap_root ? config.wrap_root(e, nodes, transport.get()) : nullptr;
    Transport* used = wrapper ? wrapper.get() : transport.get();
    SessionSettings settings = config.settings;
    settings.shares.clear();
    for (int node : nodes) settings.shares.push_back(config.settings.shares[node]);
    ASSIGN_OR_RETURN(RootSession session,
                     StartClusterRoot(*config.model, settings, config.backend, used,
                                      config.clock));
    if (config.on_session) config.on_session(e, nodes, session.engine->shard());
    ClusterOptions options;
    options.clock = config.clock;
    options.timeout = settings.timeout;
    return std::make_unique<SimSessionHandle>(config.net, std::move(transport),
                                              std::move(wrapper), std::move(session), options, e);
  };
}

void RunSimWorker(Transport* node_transport, const ModelSource* model,
                  const WorkerBackendFactory& make_backend, Clock* clock,
                  absl::Duration setup_timeout,
                  const std::function<ShardPlan(const ShardPlan&)>& plan_hook,
                  const std::function<void(int32_t epoch, const NodeShard&)>& on_loaded) {
  StreamedWeights cache;  // like a worker process: kept across sessions
  for (;;) {
    auto message = node_transport->Recv(0, kProbeTag, absl::InfiniteFuture());
    int32_t epoch;
    std::vector<int> nodes;
    if (!message.ok()) return;  // this node died, or the root is gone
    if (!Decode(*message, &epoch, &nodes)) continue;
    if (nodes.empty()) {  // a probe: "are you there?"
      node_transport->Send(0, kProbeAckTag, Encode(epoch, {}), absl::InfiniteFuture())
          .IgnoreError();
      continue;
    }
    SimSessionTransport transport(node_transport, epoch, nodes);
    if (transport.rank() <= 0) continue;
    auto session = JoinClusterSession(&transport, model, make_backend, clock, setup_timeout,
                                      plan_hook, &cache);
    if (!session.ok()) continue;
    if (on_loaded) on_loaded(epoch, (*session)->engine->shard());
    RunClusterWorker((*session)->engine.get(), &transport, (*session)->cluster).IgnoreError();
  }
}

}  // namespace shardlm::sim
