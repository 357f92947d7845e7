#include "sim/cost_run.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "sim/fault_schedule.h"
#include "transport/collectives.h"

namespace shardlm::sim {
namespace {

// Of `now`'s slices, the bytes a worker holding `before`'s lacks: its
// weight bytes scaled by the share of its elements (attention by heads, FFN
// by rows, output by vocabulary rows) outside what it held.
uint64_t MissingBytes(const LlamaConfig& c, const NodeShard& before, const NodeShard& now) {
  auto overlap = [](int64_t a0, int64_t a1, int64_t b0, int64_t b1) {
    return static_cast<double>(std::max<int64_t>(0, std::min(a1, b1) - std::max(a0, b0)));
  };
  const double head = static_cast<double>(c.head_dim) * c.dim * c.n_layers;
  const double ffn = 3.0 * c.dim * c.n_layers, vocab = static_cast<double>(c.dim);
  const double total = 2 * head * (now.q_heads() + now.kv_heads()) + ffn * now.ffn_rows() +
                       vocab * now.vocab_rows();
  const double kept =
      2 * head * (overlap(now.q_head_begin, now.q_head_end, before.q_head_begin, before.q_head_end) +
                  overlap(now.kv_head_begin, now.kv_head_end, before.kv_head_begin,
                          before.kv_head_end)) +
      ffn * overlap(now.ffn_begin, now.ffn_end, before.ffn_begin, before.ffn_end) +
      vocab * overlap(now.vocab_begin, now.vocab_end, before.vocab_begin, before.vocab_end);
  if (total <= 0) return now.weight_bytes;
  return static_cast<uint64_t>(static_cast<double>(now.weight_bytes) * (1.0 - kept / total));
}

// Round trips of a session's start per worker: hello, authentication and
// the session setup message (transport/tcp/handshake.h, core/cluster_setup.h).
constexpr int kSetupRoundTrips = 3;
// Bytes of a cluster command (FORWARD with one token, RESET); small.
constexpr int64_t kCommandBytes = 32;
// Weight streaming sends records of at most this many bytes per message.
constexpr double kWeightMessageBytes = 4 << 20;
// Most recoveries of one run (core/recovering_cluster.h's default).
constexpr int kMaxRecoveries = 16;

absl::Duration FromSeconds(double s) { return absl::Nanoseconds(std::ceil(s * 1e9)); }

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h * 0x100000001B3ull;
}

}  // namespace

CostRun::CostRun(const CostSetup& setup, const OpCosts& costs, uint64_t seed)
    : setup_(setup), costs_(costs), seed_(seed), rng_(seed * 0x9E3779B97F4A7C15ull + 29) {
  const int n = setup.scenario.cluster().nodes();
  nodes_.resize(n);
  for (NodeState& s : nodes_) s.paused_until = s.slow_until = SimEpoch();
  const int hosts = (n + setup.nodes_per_host - 1) / setup.nodes_per_host;
  for (int h = 0; h < hosts; ++h) {
    hosts_.push_back(std::make_unique<HostModel>(&sim_, setup.model.cores_per_host()));
  }
  report_.seed = seed;
  report_.nodes = n;
}

absl::StatusOr<CostRunReport> CostRun::Run() {
  const std::vector<Fault> faults = DrawFaults(setup_.scenario, seed_);
  for (const Fault& f : faults) report_.faults.push_back(DescribeFault(f));
  ScheduleFaults(faults);
  sim_.At(SimEpoch(), [this] { NewSession([this] { StartRequest(0); }); });
  sim_.Run();
  report_.events = sim_.events();
  report_.virtual_time = sim_.Now() - SimEpoch();
  return report_;
}

// --- Faults ---------------------------------------------------------------

void CostRun::ScheduleFaults(const std::vector<Fault>& faults) {
  for (const Fault& f : faults) {
    sim_.At(SimEpoch() + absl::Microseconds(f.at_ms() * 1e3), [this, f] { ApplyFault(f); });
  }
}

void CostRun::ApplyFault(const Fault& f) {
  const int node = f.node();
  const absl::Time until = sim_.Now() + absl::Microseconds(f.duration_ms() * 1e3);
  switch (f.kind()) {
    case Fault::CRASH: Crash(node, /*vanish=*/false); break;
    case Fault::VANISH: Crash(node, /*vanish=*/true); break;
    case Fault::RESTART:
      Crash(node, /*vanish=*/false);
      sim_.At(until, [this, node] {
        nodes_[node] = NodeState();
        nodes_[node].paused_until = nodes_[node].slow_until = sim_.Now();
      });
      break;
    case Fault::PAUSE: PauseNode(node, until); break;
    case Fault::SLOW:
      nodes_[node].slow_until = until;
      nodes_[node].slow_extra = absl::Microseconds(f.extra_us());
      break;
    default: break;  // rejected when the simulation was created
  }
}

void CostRun::Crash(int node, bool vanish) {
  NodeState& s = nodes_[node];
  if (!s.alive) return;
  if (s.job >= 0) hosts_[Host(node)]->Cancel(s.job);
  s.job = -1;
  s.alive = false;
  s.vanished = vanish;
  // Peers see a reset at once when they wait on it; a vanished node only at a deadline.
  if (s.waiting && ++dead_waiting_ == pending_) NoticeDeadMembers();
}

void CostRun::PauseNode(int node, absl::Time until) {
  NodeState& s = nodes_[node];
  if (!s.alive) return;
  s.paused_until = std::max(s.paused_until, until);
  if (s.job >= 0) {
    s.left = hosts_[Host(node)]->Cancel(s.job);
    s.job = -1;
    const uint64_t generation = generation_;
    sim_.At(s.paused_until, [this, node, generation] {
      if (generation != generation_ || !nodes_[node].alive) return;
      const int member = static_cast<int>(
          std::find(members_.begin(), members_.end(), node) - members_.begin());
      SubmitJob(member, nodes_[node].left);
    });
  }
  if (s.waiting) CheckDeadline(generation_);
}

// --- Requests and sessions --------------------------------------------------

void CostRun::StartRequest(size_t index) {
  const auto& requests = setup_.scenario.requests();
  if (failed_all_ || index >= static_cast<size_t>(requests.size())) return;
  const Request& q = requests[static_cast<int>(index)];
  position_ = 0;
  auto prefill = [this, index, q] {
    const absl::Time start = sim_.Now();
    RunStep(q.prompt_length(), [this, index, q, start] {
      report_.prefill_time += sim_.Now() - start;
      report_.prompt_tokens += q.prompt_length();
      Decode(index, q.steps());
    });
  };
  // A restarted node rejoins at a request boundary (RecoveringCluster::Reset).
  bool rejoin = false;
  for (size_t n = 0; n < nodes_.size(); ++n) {
    rejoin |= nodes_[n].alive && std::find(members_.begin(), members_.end(), n) == members_.end();
  }
  if (rejoin && setup_.scenario.recover()) {
    NewSession(prefill);
  } else {
    // The RESET command, then the prompt.
    RunStep(0, prefill);
  }
}

void CostRun::Decode(size_t request, int64_t left) {
  if (left == 0) {
    StartRequest(request + 1);
    return;
  }
  const absl::Time start = sim_.Now();
  RunStep(1, [this, request, left, start] {
    report_.decode_time += sim_.Now() - start;
    ++report_.decode_tokens;
    Decode(request, left - 1);
  });
}

void CostRun::FailRemaining(const std::string& why) {
  failed_all_ = true;
  report_.failed.push_back(why);
}

void CostRun::NewSession(std::function<void()> then) {
  members_.clear();
  std::vector<int> shares;
  const auto& given = setup_.scenario.cluster().shares();
  for (int n = 0; n < static_cast<int>(nodes_.size()); ++n) {
    if (!nodes_[n].alive || nodes_[n].vanished) continue;
    members_.push_back(n);
    shares.push_back(given.empty() ? 1 : given[n]);
  }
  if (members_.empty() || members_[0] != 0) {
    FailRemaining("the root is gone");
    return;
  }
  absl::StatusOr<ShardPlan> plan = ShardPlan::Create(setup_.config, shares, setup_.weights);
  if (!plan.ok()) {
    FailRemaining(std::string(plan.status().message()));
    return;
  }
  plan_ = *std::move(plan);
  collective_cache_.clear();
  decode_work_.clear();
  for (const NodeShard& shard : plan_->nodes()) {
    const OpCosts node = costs_.ForNode(setup_.config, shard);
    decode_work_.push_back({node.AttentionWeights(setup_.config, shard, 1),
                            node.FfnPhase(setup_.config, shard, 1),
                            node.OutputPhase(setup_.config, shard, 1)});
  }
  // Streamed workers keep what they hold of their new slices and receive
  // the rest (core/weight_cache.h).
  stream_bytes_.assign(members_.size(), 0);
  for (size_t m = 1; m < members_.size(); ++m) {
    if (setup_.scenario.cost().local_weights()) continue;
    std::optional<NodeShard>& held = nodes_[members_[m]].held;
    const NodeShard& now = plan_->nodes()[m];
    stream_bytes_[m] = held ? MissingBytes(setup_.config, *held, now) : now.weight_bytes;
    held = now;
  }
  std::map<int, int> threads_on_host;
  oversubscribed_ = false;
  for (int node : members_) {
    oversubscribed_ |= (threads_on_host[Host(node)] += setup_.threads) >
                       setup_.model.cores_per_host();
  }
  own_hosts_ = threads_on_host.size() == members_.size();
  sim_.After(SetupTime(), std::move(then));
}

absl::Duration CostRun::SetupTime() const {
  const LinkCost& link = setup_.model.link();
  const double rtt = 2 * (link.latency_us() + link.per_message_us()) * 1e-6;
  double seconds = 0;
  for (size_t m = 1; m < members_.size(); ++m) {
    seconds += kSetupRoundTrips * rtt;
    if (setup_.scenario.cost().local_weights()) {
      const double bytes = static_cast<double>(plan_->nodes()[m].weight_bytes);
      seconds += bytes / (setup_.model.memory_read_gbps() * 1e9);
      continue;
    }
    const double bytes = static_cast<double>(stream_bytes_[m]);
    // The root hashes each message, then sends it (core/cluster_setup.cc).
    seconds += bytes / (setup_.model.sha256_gbps() * 1e9) +
               bytes / (link.bandwidth_gbps() * 1e9) +
               std::ceil(bytes / kWeightMessageBytes) * link.per_message_us() * 1e-6;
  }
  return FromSeconds(seconds);
}

// --- Steps ------------------------------------------------------------------

void CostRun::RunStep(int64_t tokens, std::function<void()> done) {
  step_ = Step();
  step_.tokens = tokens;
  step_.position = position_;
  step_.start = sim_.Now();
  step_.done = std::move(done);
  StartPhase();
}

int64_t CostRun::ChunkTokens() const {
  return std::min<int64_t>(setup_.max_batch, step_.tokens - step_.chunk * setup_.max_batch);
}

Work CostRun::PhaseWork(int member) const {
  const NodeShard& s = plan_->nodes()[member];
  const int64_t n = ChunkTokens();
  const int p = step_.phase;
  const LlamaConfig& c = setup_.config;
  if (p < 0) return Work{};
  if (p == 0) return member == 0 ? costs_.SmallOps(1) : Work{};
  const DecodeWork& d = decode_work_[member];
  if (p > 2 * layers()) return d.output;  // the last token's row only
  if (p % 2 == 0) return n == 1 ? d.ffn : costs_.FfnPhase(c, s, n);
  Work w = n == 1 ? d.attention_weights : costs_.AttentionWeights(c, s, n);
  w += costs_.AttentionCache(c, s, n, step_.position + step_.chunk * setup_.max_batch);
  return w;
}

// A quiet phase: every member is alive, not paused or slow, alone on an
// idle host, and no event (fault, stale timer) is due before the last one
// would arrive. Then each job's end is known when it starts
// (HostModel::SoloFinish) and nothing can change it, so the phase goes
// straight to its collective at the last arrival: the same virtual times,
// random draws and results as simulating each job, minus their events.
bool CostRun::TryQuietPhase() {
  if (!own_hosts_) return false;
  const absl::Time now = sim_.Now();
  const int cores = setup_.model.cores_per_host();
  absl::Duration first = absl::InfiniteDuration(), last = absl::ZeroDuration();  // from now
  // Members mostly have the same work as the one before: SoloFinish once per run of them.
  Work solo;
  absl::Duration solo_finish = absl::ZeroDuration();
  for (int m = 0; m < static_cast<int>(members_.size()); ++m) {
    const int node = members_[m];
    const NodeState& s = nodes_[node];
    if (!s.alive || s.paused_until > now || s.slow_until > now ||
        hosts_[Host(node)]->active() > 0) {
      return false;
    }
    const Work work = PhaseWork(m);
    if (work.seconds > 0 && (work.seconds != solo.seconds || work.bytes != solo.bytes ||
                             work.host_seconds != solo.host_seconds)) {
      solo = work;
      solo_finish = HostModel::SoloFinish(work, setup_.threads, cores);
    }
    const absl::Duration at = work.seconds <= 0 ? absl::ZeroDuration() : solo_finish;
    first = std::min(first, at);
    last = std::max(last, at);
  }
  if (sim_.NextEventTime() <= now + last) return false;
  for (int node : members_) nodes_[node].waiting = false;
  pending_ = dead_waiting_ = 0;
  first_arrival_ = now + first;
  if (last == absl::ZeroDuration()) {
    FinishCollective();  // as the last synchronous arrival would
    return true;
  }
  const uint64_t generation = generation_;
  sim_.At(now + last, [this, generation] {
    if (generation == generation_) FinishCollective();
  });
  return true;
}

void CostRun::StartPhase() {
  if (TryQuietPhase()) return;
  pending_ = static_cast<int>(members_.size());
  dead_waiting_ = 0;
  const uint64_t generation = generation_;
  for (int m = 0; m < static_cast<int>(members_.size()); ++m) {
    NodeState& s = nodes_[members_[m]];
    s.waiting = true;
    if (!s.alive) {  // never arrives: found at the collective
      ++dead_waiting_;
      continue;
    }
    const Work work = PhaseWork(m);
    if (s.paused_until > sim_.Now()) {
      sim_.At(s.paused_until, [this, m, work, generation] {
        if (generation == generation_ && nodes_[members_[m]].alive) SubmitJob(m, work);
      });
    } else {
      SubmitJob(m, work);
    }
  }
  // A member already dead (crashed between steps) fails the first collective.
  for (int node : members_) {
    if (!nodes_[node].alive && pending_ > 0) {
      const absl::Duration notice =
          absl::Microseconds(setup_.model.link().latency_us()) +
          (nodes_[node].vanished ? absl::Milliseconds(setup_.scenario.cluster().timeout_ms())
                                 : absl::ZeroDuration());
      sim_.After(notice, [this, generation, node] {
        if (generation == generation_) Fail(absl::StrCat("node ", node, " is gone"));
      });
      return;
    }
  }
}

void CostRun::SubmitJob(int member, const Work& work) {
  const int node = members_[member];
  NodeState& s = nodes_[node];
  const uint64_t generation = generation_;
  auto arrive = [this, member, node, generation] {
    nodes_[node].job = -1;
    if (generation != generation_ || !nodes_[node].alive) return;
    const NodeState& n = nodes_[node];
    if (n.slow_until > sim_.Now()) {
      sim_.After(n.slow_extra, [this, member, generation] {
        if (generation == generation_) Arrive(member);
      });
    } else {
      Arrive(member);
    }
  };
  if (work.seconds <= 0) {
    arrive();
    return;
  }
  s.job = hosts_[Host(node)]->Submit(work, setup_.threads, std::move(arrive));
}

void CostRun::Arrive(int member) {
  NodeState& s = nodes_[members_[member]];
  if (!s.waiting) return;
  s.waiting = false;
  if (pending_ == static_cast<int>(members_.size())) first_arrival_ = sim_.Now();
  --pending_;
  if (pending_ == 0) {
    FinishCollective();
    return;
  }
  // Every live member waits on dead ones: a crash is seen at once.
  if (pending_ == dead_waiting_) NoticeDeadMembers();
}

void CostRun::NoticeDeadMembers() {
  for (int node : members_) {
    if (nodes_[node].waiting && !nodes_[node].alive && !nodes_[node].vanished) {
      Fail(absl::StrCat("node ", node, " crashed (connection reset)"));
      return;
    }
  }
  CheckDeadline(generation_);
}

void CostRun::CheckDeadline(uint64_t generation) {
  // Every collective's deadline runs from when the first member entered it.
  const absl::Time deadline =
      first_arrival_ + absl::Microseconds(setup_.scenario.cluster().timeout_ms() * 1e3);
  sim_.At(std::max(deadline, sim_.Now()), [this, generation] {
    if (generation != generation_ || pending_ == 0) return;
    for (int node : members_) {
      if (nodes_[node].waiting && sim_.Now() >= first_arrival_ +
          absl::Microseconds(setup_.scenario.cluster().timeout_ms() * 1e3)) {
        nodes_[node].vanished = true;  // lost: out of the next plan until it rejoins
        Fail(absl::StrCat("node ", node, " stopped answering (deadline)"));
        return;
      }
    }
  });
}

void CostRun::FinishCollective() {
  const uint64_t generation = generation_;
  ++report_.collectives;
  sim_.After(CollectiveTime(ChunkTokens()), [this, generation] { EndPhase(generation); });
}

void CostRun::EndPhase(uint64_t generation) {
  if (generation != generation_) return;
  for (int node : members_) {
    if (!nodes_[node].alive) {
      Fail(absl::StrCat("node ", node, " crashed during a collective"));
      return;
    }
  }
  const bool last_chunk = (step_.chunk + 1) * setup_.max_batch >= step_.tokens;
  if (step_.tokens == 0 || (step_.phase == 2 * layers() + 1) ||
      (step_.phase == 2 * layers() && !last_chunk)) {
    if (step_.tokens > 0 && !last_chunk) {
      ++step_.chunk;
      step_.phase = 0;
      StartPhase();
      return;
    }
    position_ += step_.tokens;
    report_.trace_hash = Mix(report_.trace_hash, absl::ToInt64Nanoseconds(sim_.Now() - SimEpoch()));
    std::function<void()> done = std::move(step_.done);
    done();
    return;
  }
  ++step_.phase;
  StartPhase();
}

absl::Duration CostRun::CollectiveTime(int64_t tokens) {
  const int phase = step_.tokens == 0 ? -1 : step_.phase;
  const int kind = phase <= 0 ? phase : (phase > 2 * layers() ? 2 : 1);
  auto it = collective_cache_.find({kind, tokens});
  absl::Duration base;
  int steps = 1;
  const int m = static_cast<int>(members_.size());
  const LinkCost& link = setup_.model.link();
  if (kind == 1 && m > 1) {
    const int64_t elements = tokens * setup_.config.dim;
    steps = ResolveAllReduceAlgorithm(setup_.algorithm, m, WireBytes(setup_.wire, elements)) ==
                    AllReduceAlgorithm::kRing ? 2 * (m - 1) : 1;
  }
  if (it != collective_cache_.end()) {
    base = it->second;
  } else {
    // Busiest member's messages and bytes, and each host's messages.
    std::vector<double> messages(m), bytes(m);
    for (int r = 0; r < m; ++r) {
      if (kind == 1) {
        const CollectiveStats t = AllReduceTraffic(setup_.wire, setup_.algorithm,
                                                   tokens * setup_.config.dim, m, r);
        messages[r] = t.messages_sent;
        bytes[r] = t.bytes_sent;
      } else if (kind == 2) {
        messages[r] = m - 1;
        bytes[r] = (m - 1) * 8.0;
      } else if (r == 0) {
        messages[r] = m - 1;
        bytes[r] = (m - 1) * (kind < 0 ? kCommandBytes : tokens * setup_.config.dim * 4.0);
      }
    }
    const double per_message = link.per_message_us() * 1e-6;
    double seconds = 0;
    for (int r = 0; r < m; ++r) {
      seconds = std::max(seconds, messages[r] * per_message + bytes[r] / (link.bandwidth_gbps() * 1e9));
    }
    // Nodes of one host share its cores for their messages' CPU time.
    std::map<int, std::pair<double, int>> host_messages;
    for (int r = 0; r < m; ++r) {
      auto& h = host_messages[Host(members_[r])];
      h.first += messages[r];
      ++h.second;
    }
    for (const auto& [host, load] : host_messages) {
      const int cores = std::min(load.second, setup_.model.cores_per_host());
      seconds = std::max(seconds, load.first * per_message / cores);
    }
    base = FromSeconds(seconds);
    collective_cache_[{kind, tokens}] = base;
  }
  if (m <= 1) return absl::ZeroDuration();
  const double jitter = setup_.scenario.cluster().link().jitter_us();
  // Each hop waits for a core when the host runs more threads than it has;
  // the collective as a whole waits for its last node and wakes the others.
  double latency_us = setup_.model.busy_collective_us() +
                      steps * (link.latency_us() + (oversubscribed_
                                                        ? setup_.model.oversubscribed_wakeup_us()
                                                        : 0));
  if (jitter > 0) {
    latency_us += steps * jitter * static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  }
  return base + absl::Nanoseconds(std::llround(latency_us * 1e3));
}

// --- Failures -------------------------------------------------------------

void CostRun::Fail(const std::string& cause) {
  ++generation_;
  for (int node : members_) {
    NodeState& s = nodes_[node];
    if (s.job >= 0) hosts_[Host(node)]->Cancel(s.job);
    s.job = -1;
    s.waiting = false;
  }
  pending_ = dead_waiting_ = 0;
  const absl::Duration detect = sim_.Now() - step_.start;
  if (!setup_.scenario.recover() ||
      static_cast<int>(report_.recoveries.size()) >= kMaxRecoveries) {
    FailRemaining(absl::StrCat("request failed: ", cause));
    return;
  }
  Recover(cause, detect);
}

void CostRun::Recover(const std::string& cause, absl::Duration detect) {
  RecoveryEvent event;
  event.cause = cause;
  event.detect = detect;
  event.nodes_before = static_cast<int>(members_.size());
  Step failed = std::move(step_);
  const absl::Time replan_start = sim_.Now();
  const int64_t history = failed.position;
  NewSession([this, event, failed, replan_start, history]() mutable {
    event.nodes_after = static_cast<int>(members_.size());
    event.replan = sim_.Now() - replan_start;
    for (uint64_t bytes : stream_bytes_) event.weight_bytes += static_cast<int64_t>(bytes);
    event.rebuilt_tokens = history;
    const absl::Time rebuild_start = sim_.Now();
    auto retry = [this, event, failed, rebuild_start]() mutable {
      event.rebuild = sim_.Now() - rebuild_start;
      report_.recoveries.push_back(event);
      position_ = failed.position;
      RunStep(failed.tokens, std::move(failed.done));
    };
    position_ = 0;
    if (history == 0) {
      retry();
    } else {
      RunStep(history, std::move(retry));
    }
  });
}

}  // namespace shardlm::sim
