// The simulated network: one SimTransport per node, links with latency,
// bandwidth and jitter, and the network faults. It keeps the Transport
// contract of core/transport.h (reliable, FIFO per (peer, tag), deadlines
// on the virtual clock): like TCP it never drops a message silently, so a
// lost link or a crashed peer surfaces as a broken connection (Unavailable)
// or, for a machine that vanished, as silence that ends in DeadlineExceeded.
#ifndef SHARDLM_SIM_SIM_NETWORK_H_
#define SHARDLM_SIM_SIM_NETWORK_H_

#include <cstdint>
#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/transport.h"
#include "sim/simulator.h"

namespace shardlm::sim {

// A directed link's behaviour.
struct LinkModel {
  absl::Duration latency = absl::Microseconds(50);
  double bytes_per_second = 1.25e9;  // 10 Gbit/s
  absl::Duration jitter = absl::ZeroDuration();  // uniform extra delay in [0, jitter)
};

// One thing the network did, for traces and their hash.
struct NetEvent {
  absl::Time time;
  std::string kind;  // "send", "deliver", "reset", "crash", ...
  int node = -1;     // where it happened
  int peer = -1;
  uint32_t tag = 0;
  int64_t bytes = 0;
  uint64_t hash = 0;  // FNV-1a of the payload
};

class SimNetwork {
 public:
  // `nodes` nodes, every link `model`; jitter drawn from `seed`.
  SimNetwork(Simulator* sim, int nodes, const LinkModel& model, uint64_t seed);

  int nodes() const { return static_cast<int>(nodes_.size()); }
  // Whether `node` crashed or closed (and was not attached again since).
  bool dead(int node) const { return nodes_[node].dead; }

  // The transport of `node`, whose code runs as simulator process `pid`
  // (Recv parks that process). Call again after a restart with the new pid.
  std::unique_ptr<Transport> Attach(int node, int pid);

  // Directed link a -> b.
  void SetLink(int a, int b, const LinkModel& model);
  // Adds `extra` latency to every message sent a -> b until `until`.
  void DelaySpike(int a, int b, absl::Duration extra, absl::Time until);

  // Until `until`, link a -> b runs at `bandwidth_factor` of its bandwidth
  // with `jitter` added to its jitter; then it is restored.
  void ScaleLink(int a, int b, double bandwidth_factor, absl::Duration jitter, absl::Time until);

  // --- Sessions (epochs) ---
  // A transport carries its session's epoch in the high 16 bits of every
  // tag (epoch 0: outside any session). Starting epoch `epoch` makes later
  // link breaks apply to it and every earlier one, but not to new sessions,
  // which open new connections.
  void BeginEpoch(int32_t epoch) { max_epoch_ = std::max(max_epoch_, epoch); }
  // The root ended session `epoch`: one link latency later, `node`'s calls
  // in that session (or older ones) fail with Unavailable.
  void AbortEpoch(int node, int32_t epoch);

  // --- Faults ---
  // Fail-stop: the node's process is killed; its peers see their
  // connections to it reset one link latency later.
  void Crash(int node);
  // The node's code has returned (a process exiting): its connections
  // close, so peers see them reset; nothing is killed.
  void Close(int node);
  // The machine vanishes: the process is killed and nobody is told (peers
  // wait until their deadlines).
  void Vanish(int node);
  // The connection a <-> b breaks (both ends see Unavailable).
  void BreakLink(int a, int b);
  // Messages a -> b are held (TCP retransmitting) from now until `until`,
  // then delivered in order. One direction only: partition both for a
  // symmetric one.
  void Clog(int a, int b, absl::Time until);

  // Every event so far, and their combined hash.
  const std::vector<NetEvent>& events() const { return events_; }
  uint64_t trace_hash() const { return trace_hash_; }
  // Called on every event as it happens (for streaming traces).
  void set_observer(std::function<void(const NetEvent&)> observer) {
    observer_ = std::move(observer);
  }

  // Bytes and messages sent by `node`.
  int64_t bytes_sent(int node) const { return nodes_[node].bytes_sent; }

 private:
  friend class SimTransport;
  struct Link {
    LinkModel model;
    absl::Time busy_until = SimEpoch();   // the sender's wire is busy
    absl::Time last_arrival = SimEpoch();  // FIFO: never arrive earlier
    absl::Time clogged_until = SimEpoch();
    absl::Time spike_until = SimEpoch();
    absl::Duration spike = absl::ZeroDuration();
    // Connections of sessions with epoch <= broken_upto are broken.
    int32_t broken_upto = -1;
    bool broken_for(uint32_t tag) const { return static_cast<int32_t>(tag >> 16) <= broken_upto; }
  };
  struct Node {
    int pid = -1;
    bool dead = false;
    int64_t bytes_sent = 0;
    // Mailboxes by (source, tag).
    std::map<std::pair<int, uint32_t>, std::deque<std::vector<uint8_t>>> mailboxes;
    bool waiting = false;  // its process is parked in Recv
    int32_t aborted_upto = 0;  // sessions with epoch in (0, aborted_upto] are over
  };

  Link& link(int a, int b) { return links_[a * nodes() + b]; }
  void Record(NetEvent e);
  // Sends from the transport of `src`.
  absl::Status Send(int src, int dst, uint32_t tag, std::vector<uint8_t> data);
  absl::StatusOr<std::vector<uint8_t>> Recv(int dst, int src, uint32_t tag, absl::Time deadline);
  void Deliver(int src, int dst, uint32_t tag, std::vector<uint8_t> data);
  void WakeIfWaiting(int node);

  Simulator* sim_;
  std::vector<Node> nodes_;
  std::vector<Link> links_;
  std::mt19937_64 rng_;
  std::vector<NetEvent> events_;
  uint64_t trace_hash_ = 1469598103934665603ull;
  int32_t max_epoch_ = 0;
  std::function<void(const NetEvent&)> observer_;
};

// FNV-1a 64 of `bytes`, continuing from `h`.
uint64_t Fnv1a(const void* bytes, size_t n, uint64_t h = 1469598103934665603ull);

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_SIM_NETWORK_H_
