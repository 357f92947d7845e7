#include "sim/sim_network.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace shardlm::sim {

uint64_t Fnv1a(const void* bytes, size_t n, uint64_t h) {
  const auto* p = static_cast<const uint8_t*>(bytes);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

// One node's view of the network.
class SimTransport : public Transport {
 public:
  SimTransport(SimNetwork* net, int node) : net_(net), node_(node) {}
  int rank() const override { return node_; }
  int world_size() const override { return net_->nodes(); }
  absl::Status Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                    absl::Time deadline) override {
    if (peer < 0 || peer >= world_size()) {
      return absl::InvalidArgumentError(absl::StrCat("sim send: no rank ", peer));
    }
    return net_->Send(node_, peer, tag, std::vector<uint8_t>(data.begin(), data.end()));
  }
  absl::StatusOr<std::vector<uint8_t>> Recv(int peer, uint32_t tag,
                                            absl::Time deadline) override {
    if (peer < 0 || peer >= world_size()) {
      return absl::InvalidArgumentError(absl::StrCat("sim recv: no rank ", peer));
    }
    return net_->Recv(node_, peer, tag, deadline);
  }

 private:
  SimNetwork* net_;
  int node_;
};

SimNetwork::SimNetwork(Simulator* sim, int nodes, const LinkModel& model, uint64_t seed)
    : sim_(sim), nodes_(nodes), links_(static_cast<size_t>(nodes) * nodes), rng_(seed) {
  for (Link& l : links_) l.model = model;
}

std::unique_ptr<Transport> SimNetwork::Attach(int node, int pid) {
  Node& n = nodes_[node];
  n.pid = pid;
  n.dead = false;
  n.waiting = false;
  n.mailboxes.clear();
  for (int peer = 0; peer < nodes(); ++peer) {
    link(node, peer).broken_upto = -1;
    link(peer, node).broken_upto = -1;
  }
  return std::make_unique<SimTransport>(this, node);
}

void SimNetwork::SetLink(int a, int b, const LinkModel& model) { link(a, b).model = model; }

void SimNetwork::DelaySpike(int a, int b, absl::Duration extra, absl::Time until) {
  link(a, b).spike = extra;
  link(a, b).spike_until = until;
  Record({sim_->Now(), "delay-spike", a, b, 0, absl::ToInt64Microseconds(extra), 0});
}

void SimNetwork::ScaleLink(int a, int b, double bandwidth_factor, absl::Duration jitter,
                           absl::Time until) {
  const LinkModel before = link(a, b).model;
  link(a, b).model.bytes_per_second *= bandwidth_factor;
  link(a, b).model.jitter += jitter;
  Record({sim_->Now(), "link-degraded", a, b, 0, absl::ToInt64Microseconds(until - sim_->Now()),
          0});
  sim_->At(until, [this, a, b, before] {
    link(a, b).model = before;
    Record({sim_->Now(), "link-restored", a, b, 0, 0, 0});
  });
}

void SimNetwork::Record(NetEvent e) {
  const int64_t t = absl::ToUnixNanos(e.time);
  uint64_t h = Fnv1a(&t, sizeof(t), trace_hash_);
  h = Fnv1a(e.kind.data(), e.kind.size(), h);
  const int64_t fields[] = {e.node, e.peer, static_cast<int64_t>(e.tag), e.bytes,
                            static_cast<int64_t>(e.hash)};
  trace_hash_ = Fnv1a(fields, sizeof(fields), h);
  if (observer_) observer_(e);
  events_.push_back(std::move(e));
}

void SimNetwork::WakeIfWaiting(int node) {
  Node& n = nodes_[node];
  if (n.waiting && n.pid >= 0) sim_->Wake(n.pid);
}

absl::Status SimNetwork::Send(int src, int dst, uint32_t tag, std::vector<uint8_t> data) {
  // The calling process (an old one of a restarted node may still unwind).
  const int caller = sim_->current();
  if (nodes_[src].dead || (caller >= 0 && sim_->killed(caller))) {
    return absl::UnavailableError(absl::StrCat("rank ", src, " has crashed"));
  }
  if (link(src, dst).broken_for(tag)) {
    return absl::UnavailableError(
        absl::StrCat("connection to rank ", dst, " broken (reset by peer)"));
  }
  const uint64_t hash = Fnv1a(data.data(), data.size());
  nodes_[src].bytes_sent += static_cast<int64_t>(data.size());
  Record({sim_->Now(), "send", src, dst, tag, static_cast<int64_t>(data.size()), hash});
  if (src == dst) {
    Deliver(src, dst, tag, std::move(data));
    return absl::OkStatus();
  }
  Link& l = link(src, dst);
  const absl::Time now = sim_->Now();
  const absl::Time start = std::max(now, l.busy_until);
  l.busy_until = start + absl::Seconds(static_cast<double>(data.size()) / l.model.bytes_per_second);
  absl::Duration delay = l.model.latency;
  if (l.model.jitter > absl::ZeroDuration()) {
    const int64_t j = absl::ToInt64Nanoseconds(l.model.jitter);
    delay += absl::Nanoseconds(static_cast<int64_t>(rng_() % static_cast<uint64_t>(j)));
  }
  if (now < l.spike_until) delay += l.spike;
  absl::Time arrival = std::max({l.busy_until + delay, l.last_arrival, l.clogged_until});
  l.last_arrival = arrival;
  sim_->At(arrival, [this, src, dst, tag, d = std::move(data)]() mutable {
    Deliver(src, dst, tag, std::move(d));
  });
  return absl::OkStatus();
}

void SimNetwork::Deliver(int src, int dst, uint32_t tag, std::vector<uint8_t> data) {
  Node& n = nodes_[dst];
  if (n.dead || link(src, dst).broken_for(tag)) return;  // the connection is gone
  Record({sim_->Now(), "deliver", dst, src, tag, static_cast<int64_t>(data.size()),
          Fnv1a(data.data(), data.size())});
  n.mailboxes[{src, tag}].push_back(std::move(data));
  WakeIfWaiting(dst);
}

absl::StatusOr<std::vector<uint8_t>> SimNetwork::Recv(int dst, int src, uint32_t tag,
                                                      absl::Time deadline) {
  Node& n = nodes_[dst];
  for (;;) {
    const int caller = sim_->current();
    if (n.dead || (caller >= 0 && sim_->killed(caller)) || (caller >= 0 && caller != n.pid)) {
      return absl::UnavailableError(absl::StrCat("rank ", dst, " has crashed"));
    }
    auto it = n.mailboxes.find({src, tag});
    if (it != n.mailboxes.end() && !it->second.empty()) {
      std::vector<uint8_t> m = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty()) n.mailboxes.erase(it);
      return m;
    }
    if (link(src, dst).broken_for(tag)) {
      return absl::UnavailableError(absl::StrCat("rank ", src, ": connection reset by peer"));
    }
    const int32_t epoch = static_cast<int32_t>(tag >> 16);
    if (epoch > 0 && epoch <= n.aborted_upto) {
      return absl::UnavailableError("the root ended the session");
    }
    if (sim_->Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("recv from rank ", src, " tag ", tag, ": deadline exceeded"));
    }
    if (deadline != absl::InfiniteFuture()) {
      const int pid = n.pid;
      sim_->At(deadline, [this, pid] { sim_->Wake(pid); });
    }
    n.waiting = true;
    sim_->Park();
    n.waiting = false;
  }
}

void SimNetwork::Crash(int node) {
  Node& n = nodes_[node];
  if (n.dead) return;
  Record({sim_->Now(), "crash", node, -1, 0, 0, 0});
  if (n.pid >= 0) sim_->Kill(n.pid);
  Close(node);
}

void SimNetwork::Close(int node) {
  Node& n = nodes_[node];
  if (n.dead) return;
  n.dead = true;
  n.mailboxes.clear();
  Record({sim_->Now(), "close", node, -1, 0, 0, 0});
  for (int peer = 0; peer < nodes(); ++peer) {
    if (peer == node) continue;
    // The reset follows whatever the node had already sent on that link.
    const absl::Time at = std::max(sim_->Now() + link(node, peer).model.latency,
                                   link(node, peer).last_arrival);
    sim_->At(at, [this, node, peer] {
      if (!nodes_[node].dead) return;  // restarted meanwhile
      link(node, peer).broken_upto = std::numeric_limits<int32_t>::max();
      link(peer, node).broken_upto = std::numeric_limits<int32_t>::max();
      Record({sim_->Now(), "reset", peer, node, 0, 0, 0});
      WakeIfWaiting(peer);
    });
  }
}

void SimNetwork::AbortEpoch(int node, int32_t epoch) {
  sim_->After(link(0, node).model.latency, [this, node, epoch] {
    Node& n = nodes_[node];
    n.aborted_upto = std::max(n.aborted_upto, epoch);
    Record({sim_->Now(), "session-abort", node, 0, static_cast<uint32_t>(epoch), 0, 0});
    WakeIfWaiting(node);
  });
}

void SimNetwork::Vanish(int node) {
  Node& n = nodes_[node];
  if (n.dead) return;
  n.dead = true;
  n.mailboxes.clear();
  Record({sim_->Now(), "vanish", node, -1, 0, 0, 0});
  if (n.pid >= 0) sim_->Kill(n.pid);
}

void SimNetwork::BreakLink(int a, int b) {
  link(a, b).broken_upto = std::max(link(a, b).broken_upto, max_epoch_);
  link(b, a).broken_upto = std::max(link(b, a).broken_upto, max_epoch_);
  Record({sim_->Now(), "link-down", a, b, 0, 0, 0});
  WakeIfWaiting(a);
  WakeIfWaiting(b);
}

void SimNetwork::Clog(int a, int b, absl::Time until) {
  link(a, b).clogged_until = std::max(link(a, b).clogged_until, until);
  Record({sim_->Now(), "clog", a, b, 0, absl::ToInt64Microseconds(until - sim_->Now()), 0});
}

}  // namespace shardlm::sim
