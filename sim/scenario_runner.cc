#include "sim/scenario_runner.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backends/cpu/cpu_backend.h"
#include "core/cluster_session.h"
#include "core/engine.h"
#include "core/generator.h"
#include "core/model_config.h"
#include "core/model_presets.h"
#include "core/synthetic_model.h"
#include "core/status_macros.h"
#include "core/text_proto.h"
#include "sim/fault_schedule.h"
#include "sim/sim_session.h"
#include "sim/simulator.h"

namespace shardlm::sim {
namespace {

// Collects the first text-format parse error.

absl::StatusOr<std::unique_ptr<Backend>> OneThreadExact(Numerics numerics) {
  BackendOptions o;
  o.threads = 1;
  o.numerics = numerics;
  return CpuBackend::Create(o);
}

bool FileExists(const std::string& path) { return std::ifstream(path).good(); }

// The scenario's model file: `path` relative to the scenario, then under
// ../shared/models; or the preset written to a temporary file.
absl::StatusOr<std::string> ResolveModel(const Model& model, const std::string& dir) {
  if (!model.path().empty()) {
    for (const std::string& c : {absl::StrCat(dir, "/", model.path()), model.path(),
                                 absl::StrCat("../shared/models/", model.path())}) {
      if (FileExists(c)) return c;
    }
    return absl::NotFoundError(absl::StrCat("model ", model.path(), " not found next to the "
                                            "scenario, here or in ../shared/models"));
  }
  ASSIGN_OR_RETURN(const ModelPreset preset, FindModelPreset(model.preset()));
  SyntheticModelSpec spec = preset.spec;
  if (!model.type().empty()) {
    ASSIGN_OR_RETURN(spec.type, ParseDType(model.type()));
  }
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(tmp ? tmp : "/tmp", "/shardlm-sim-", model.preset(), "-",
                                        DTypeName(spec.type), ".gguf");
  RETURN_IF_ERROR(WriteSyntheticModel(spec, path));
  return path;
}

// Greedy tokens of `prompt` on one node: the reference every completed
// request must equal in exact numerics.
// How a request samples (greedy unless it names a temperature).
SamplerOptions SamplingOf(const Request& q) {
  if (q.temperature() <= 0) return SamplerOptions{0.0, 1.0, 1, 1};
  return SamplerOptions{q.temperature(), q.top_p() > 0 ? q.top_p() : 1.0, q.seed(), q.top_k()};
}

absl::StatusOr<std::vector<int32_t>> SingleNodeTokens(const GgufFile& file,
                                                      const std::vector<int32_t>& prompt,
                                                      const Request& request, int32_t eos) {
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, OneThreadExact(Numerics::kExact));
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                   Engine::Create(&file, backend.get(), EngineOptions{}));
  Sampler sampler(SamplingOf(request));
  const int64_t steps = request.steps();
  ManualClock clock;
  std::vector<int32_t> out;
  RETURN_IF_ERROR(Generate(engine.get(), &sampler, prompt, steps, eos, &clock, [&](int32_t id) {
                    out.push_back(id);
                    return absl::OkStatus();
                  }).status());
  return out;
}

}  // namespace

absl::StatusOr<Scenario> ParseScenario(const std::string& text, const std::string& source) {
  Scenario scenario;
  RETURN_IF_ERROR(ParseTextProto(text, source, &scenario));
  const Cluster& c = scenario.cluster();
  if (c.nodes() < 1 || c.nodes() > 64) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": cluster.nodes must be in [1, 64]"));
  }
  if (c.shares_size() != 0 && c.shares_size() != c.nodes()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", c.shares_size(), " shares for ", c.nodes(), " nodes"));
  }
  if (c.max_nodes() != 0 && (c.max_nodes() < c.nodes() || c.max_nodes() > 64 ||
                             c.shares_size() != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": cluster.max_nodes must be in [nodes, 64], without shares (they are equal)"));
  }
  if (scenario.requests().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no requests"));
  }
  if (scenario.model().path().empty() == scenario.model().preset().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": give model.path or model.preset"));
  }
  for (const Fault& f : scenario.faults()) {
    if (f.node() < 0 || f.node() >= c.nodes() || f.peer() < 0 || f.peer() >= c.nodes()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": fault ", Fault::Kind_Name(f.kind()), " names a node outside "
                       "the cluster"));
    }
  }
  return scenario;
}

int NodesForSeed(const Cluster& cluster, uint64_t seed) {
  if (cluster.max_nodes() <= cluster.nodes()) return cluster.nodes();
  // A stream of its own, so that the faults a seed draws stay the same.
  std::mt19937_64 rng(seed * 0xD1B54A32D192ED03ull + 29);
  const uint64_t span = static_cast<uint64_t>(cluster.max_nodes() - cluster.nodes()) + 1;
  return cluster.nodes() + static_cast<int>(rng() % span);
}

absl::StatusOr<Scenario> LoadScenario(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read scenario ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseScenario(ss.str(), path);
}

absl::StatusOr<std::unique_ptr<ScenarioRunner>> ScenarioRunner::Create(
    const Scenario& scenario, const std::string& scenario_dir) {
  std::unique_ptr<ScenarioRunner> r(new ScenarioRunner());
  r->scenario_ = scenario;
  ASSIGN_OR_RETURN(const std::string path, ResolveModel(scenario.model(), scenario_dir));
  ASSIGN_OR_RETURN(r->model_, OpenModelSource(path));
  ASSIGN_OR_RETURN(r->tokenizer_, Tokenizer::FromGguf(*r->model_.file));
  for (const Request& q : scenario.requests()) {
    r->prompts_.push_back(
        q.prompt_tokens().empty()
            ? r->tokenizer_->Encode(q.prompt(), /*add_bos=*/true)
            : std::vector<int32_t>(q.prompt_tokens().begin(), q.prompt_tokens().end()));
    for (int32_t t : r->prompts_.back()) {
      if (t < 0 || t >= r->tokenizer_->vocab_size()) {
        return absl::InvalidArgumentError(
            absl::StrCat(scenario.name(), ": prompt token ", t, " outside the vocabulary"));
      }
    }
    ASSIGN_OR_RETURN(std::vector<int32_t> ref,
                     SingleNodeTokens(*r->model_.file, r->prompts_.back(), q,
                                      r->tokenizer_->eos_id()));
    r->reference_.push_back(std::move(ref));
  }
  const Cluster& c = scenario.cluster();
  r->shares_ = c.shares().empty() ? std::vector<int>(c.nodes(), 1)
                                  : std::vector<int>(c.shares().begin(), c.shares().end());
  ASSIGN_OR_RETURN(const LlamaConfig config, LlamaConfigFromGguf(*r->model_.file));
  ASSIGN_OR_RETURN(const PlanWeightInfo info, PlanWeightInfo::FromGguf(*r->model_.file));
  for (int n = c.nodes(); n <= std::max(c.nodes(), c.max_nodes()); ++n) {
    const std::vector<int> shares = n == c.nodes() ? r->shares_ : std::vector<int>(n, 1);
    const absl::Status plan = ShardPlan::Create(config, shares, info).status();
    if (!plan.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(scenario.name(), ": ", plan.message()));
    }
  }
  return r;
}

// What the simulated nodes leave behind for the invariants.
struct ScenarioRunner::RunState {
  std::vector<RequestOutcome> outcomes;
  // Per session (epoch; 0 without recovery): its size and the slices each
  // node loaded, by node.
  std::map<int32_t, int> session_size;
  std::map<int32_t, std::map<int, NodeShard>> shards;
  std::vector<RecoveryEvent> recoveries;
  std::string root_error;              // first error the root saw
  absl::Time root_done = SimEpoch();   // when the root's code returned
  std::vector<int> session_nodes;      // of the session running now
  // Replay hooks, bound to this run's nodes (null: none).
  std::function<std::unique_ptr<Transport>(int32_t, const std::vector<int>&, Transport*)>
      wrap_root;
};

namespace {

// Every q head, FFN row and vocabulary row is held by exactly one node.
void CheckCoverage(const std::map<int, NodeShard>& shards, const LlamaConfig& config,
                   std::vector<std::string>* violations) {
  struct Part {
    const char* what;
    int64_t total;
    int64_t NodeShard::*begin;
    int64_t NodeShard::*end;
  };
  const Part parts[] = {{"query heads", config.n_heads, &NodeShard::q_head_begin,
                         &NodeShard::q_head_end},
                        {"FFN rows", config.ffn_dim, &NodeShard::ffn_begin, &NodeShard::ffn_end},
                        {"vocabulary rows", config.vocab_size, &NodeShard::vocab_begin,
                         &NodeShard::vocab_end}};
  for (const Part& p : parts) {
    std::vector<int> owners(p.total, 0);
    for (const auto& [node, s] : shards) {
      for (int64_t i = std::max<int64_t>(0, s.*p.begin); i < std::min(p.total, s.*p.end); ++i) {
        ++owners[i];
      }
    }
    for (int64_t i = 0; i < p.total; ++i) {
      if (owners[i] != 1) {
        violations->push_back(absl::StrCat(p.what, " ", i, " held by ", owners[i],
                                           " nodes (must be exactly 1)"));
        break;
      }
    }
  }
}

}  // namespace

absl::StatusOr<SimRunReport> ScenarioRunner::Run(const SimRunOptions& options) const {
  const Cluster& c = scenario_.cluster();
  const int n = NodesForSeed(c, options.seed);
  Scenario sized = scenario_;  // what this seed runs: its node count
  sized.mutable_cluster()->set_nodes(n);
  Simulator sim;
  SimClock clock(&sim);
  LinkModel link;
  if (c.link().latency_us() > 0) link.latency = absl::Microseconds(c.link().latency_us());
  if (c.link().bandwidth_gbps() > 0) link.bytes_per_second = c.link().bandwidth_gbps() * 1.25e8;
  link.jitter = absl::Nanoseconds(static_cast<int64_t>(c.link().jitter_us() * 1e3));
  SimNetwork net(&sim, n, link, options.seed);
  if (options.observer) net.set_observer(options.observer);

  SessionSettings settings;
  settings.shares = n == c.nodes() ? shares_ : std::vector<int>(n, 1);
  settings.timeout = absl::Microseconds(
      static_cast<int64_t>((c.timeout_ms() > 0 ? c.timeout_ms() : 2000) * 1e3));
  RunState state;
  state.outcomes.resize(prompts_.size());
  state.session_size[0] = n;
  std::vector<int> pids(n, -1);

  // A node whose code returns closes its connections, as a process exiting.
  // The transport of each process, by pid: a restarted node's new process
  // gets a new one while its old process may still be unwinding.
  std::vector<std::unique_ptr<Transport>> by_pid;
  auto mine = [&]() { return by_pid[sim.current()].get(); };
  // A process whose code returns closes its node's connections, unless the
  // node has been restarted since (its new process owns them).
  auto close_if_current = [&](int node) {
    if (pids[node] == sim.current()) net.Close(node);
  };
  auto root_body = [&] {
    if (scenario_.recover()) {
      RunRecoveringRoot(settings, &net, mine(), &clock, &state);
    } else {
      RunRoot(settings, mine(), &clock, &state);
    }
    state.root_done = sim.Now();
    close_if_current(0);
  };
  const std::function<ShardPlan(const ShardPlan&)> plan_bug = [](const ShardPlan& plan) {
    NodeShard s = plan.nodes()[1];
    s.ffn_begin += 1;  // the off-by-one: row ffn_begin is held by nobody
    return plan.WithNodeReplacedForTesting(s);
  };
  auto worker_body = [&](int node) {
    if (scenario_.recover()) {
      RunSimWorker(mine(), scenario_.stream_weights() ? nullptr : &model_, OneThreadExact, &clock, settings.timeout,
                   options.inject_plan_bug && node == 1 ? plan_bug : nullptr,
                   [&state, node](int32_t epoch, const NodeShard& shard) {
                     state.shards[epoch][node] = shard;
                   });
      close_if_current(node);
      return;
    }
    auto session = JoinClusterSession(mine(), &model_, OneThreadExact, &clock,
                                      settings.timeout,
                                      options.inject_plan_bug && node == 1 ? plan_bug : nullptr);
    if (session.ok()) {
      state.shards[0][node] = (*session)->engine->shard();
      RunClusterWorker((*session)->engine.get(), mine(), (*session)->cluster).IgnoreError();
    }
    close_if_current(node);
  };
  auto spawn = [&](int node) {
    const int pid = node == 0 ? sim.Spawn("root", root_body)
                              : sim.Spawn(absl::StrCat("worker", node),
                                          [&, node] { worker_body(node); });
    by_pid.resize(pid + 1);
    by_pid[pid] = net.Attach(node, pid);
    pids[node] = pid;
    return pid;
  };
  // Replays act on the nodes from the root's process: the action runs as an
  // event, and the root yields so that it happens first.
  const RunControl control{
      [&](int node) {
        sim.At(sim.Now(), [&, node] { net.Crash(node); });
        sim.SleepFor(absl::ZeroDuration());
      },
      [&](int node) {
        sim.At(sim.Now(), [&, node] {
          net.Crash(node);
          pids[node] = spawn(node);
        });
        sim.SleepFor(absl::ZeroDuration());
      }};
  if (options.wrap_root_session) {
    state.wrap_root = [&](int32_t e, const std::vector<int>& nodes, Transport* inner) {
      return options.wrap_root_session(e, nodes, inner, control);
    };
  }
  for (int node = 0; node < n; ++node) pids[node] = spawn(node);
  const std::vector<Fault> faults = DrawFaults(sized, options.seed);
  ScheduleFaults(faults, &sim, &net, FaultTargets{&pids, spawn});
  sim.Run(SimEpoch() + absl::Hours(1));
  // Workers still waiting for a root unwind now, while what they use lives.
  sim.Shutdown();
  return Report(options, sim, net, faults, state);
}

void ScenarioRunner::RunRoot(const SessionSettings& settings, Transport* transport, Clock* clock,
                             RunState* state) const {
  auto fail_from = [&](size_t first, const std::string& why) {
    for (size_t i = first; i < state->outcomes.size(); ++i) {
      if (state->outcomes[i].error.empty()) state->outcomes[i].error = why;
    }
    if (state->root_error.empty()) state->root_error = why;
  };
  absl::StatusOr<std::unique_ptr<Backend>> backend = OneThreadExact(Numerics::kExact);
  if (!backend.ok()) return fail_from(0, std::string(backend.status().message()));
  absl::StatusOr<RootSession> session =
      StartClusterRoot(model_, settings, backend->get(), transport, clock);
  if (!session.ok()) {
    return fail_from(0, absl::StrCat("session setup failed: ", session.status().message()));
  }
  state->shards[0][0] = session->engine->shard();
  ClusterOptions options;
  options.clock = clock;
  options.timeout = settings.timeout;
  ClusterRoot root(session->engine.get(), transport, options);
  for (size_t i = 0; i < prompts_.size(); ++i) {
    RequestOutcome& out = state->outcomes[i];
    Sampler sampler(SamplingOf(scenario_.requests(i)));
    absl::Status s = i == 0 ? absl::OkStatus() : root.Reset();
    if (s.ok()) {
      s = GenerateDistributed(&root, &sampler, prompts_[i], scenario_.requests(i).steps(),
                              tokenizer_->eos_id(), clock, [&](int32_t id) {
                                out.tokens.push_back(id);
                                return absl::OkStatus();
                              })
              .status();
    }
    if (!s.ok()) {
      out.error = std::string(s.message());
      fail_from(i + 1, absl::StrCat("not run: the cluster failed: ", s.message()));
      return;
    }
    out.completed = true;
    out.text = tokenizer_->Decode(out.tokens);
  }
  root.Stop().IgnoreError();
}

void ScenarioRunner::RunRecoveringRoot(const SessionSettings& settings, SimNetwork* net,
                                       Transport* transport, Clock* clock,
                                       RunState* state) const {
  absl::StatusOr<std::unique_ptr<Backend>> backend = OneThreadExact(Numerics::kExact);
  SimSessionConfig config;
  config.net = net;
  config.root_transport = transport;
  config.clock = clock;
  config.model = &model_;
  config.backend = backend.ok() ? backend->get() : nullptr;
  config.settings = settings;
  config.probe_timeout = settings.timeout;
  config.wrap_root = state->wrap_root;
  config.on_session = [state](int32_t epoch, const std::vector<int>& nodes,
                              const NodeShard& root) {
    state->session_size[epoch] = static_cast<int>(nodes.size());
    state->session_nodes = nodes;
    state->shards[epoch][0] = root;
  };
  RecoveringCluster cluster(SimSessionFactory(config), clock, /*max_recoveries=*/32,
                            [state](const RecoveryEvent& e) { state->recoveries.push_back(e); });
  // As over TCP: a new session at a request boundary only when a lost node
  // is up again.
  cluster.set_rejoin_probe([net, state] {
    for (int node = 1; node < net->nodes(); ++node) {
      const auto& in = state->session_nodes;
      if (std::find(in.begin(), in.end(), node) == in.end() && !net->dead(node)) return true;
    }
    return false;
  });
  absl::Status s = backend.ok() ? cluster.Start() : backend.status();
  for (size_t i = 0; i < prompts_.size() && s.ok(); ++i) {
    RequestOutcome& out = state->outcomes[i];
    Sampler sampler(SamplingOf(scenario_.requests(i)));
    s = i == 0 ? absl::OkStatus() : cluster.Reset();
    if (s.ok()) {
      s = Generate(&cluster, &sampler, prompts_[i], scenario_.requests(i).steps(),
                   tokenizer_->eos_id(), clock, [&](int32_t id) {
                     out.tokens.push_back(id);
                     return absl::OkStatus();
                   })
              .status();
    }
    if (s.ok()) {
      out.completed = true;
      out.text = tokenizer_->Decode(out.tokens);
    }
  }
  for (RequestOutcome& out : state->outcomes) {
    if (!out.completed && out.error.empty()) out.error = std::string(s.message());
  }
  if (!s.ok() && state->root_error.empty()) state->root_error = std::string(s.message());
  if (s.ok()) cluster.Stop().IgnoreError();
}

SimRunReport ScenarioRunner::Report(const SimRunOptions& options, const Simulator& sim,
                                    const SimNetwork& net, const std::vector<Fault>& faults,
                                    const RunState& state) const {
  SimRunReport r;
  r.seed = options.seed;
  r.nodes = net.nodes();
  r.requests = state.outcomes;
  for (const Fault& f : faults) {
    r.faults.push_back(DescribeFault(f));
    r.fault_kinds.push_back(f.kind());
  }
  r.events = sim.events();
  r.virtual_time = state.root_done - SimEpoch();
  r.trace_hash = net.trace_hash();
  for (const NetEvent& e : net.events()) r.messages += e.kind == "send";
  bool node_killed = false;
  bool root_killed = false;
  for (const Fault& f : faults) {
    node_killed |= KillsANode(f.kind());
    root_killed |= f.node() == 0 && (f.kind() == Fault::CRASH || f.kind() == Fault::VANISH ||
                                     f.kind() == Fault::RESTART);
  }
  for (size_t i = 0; i < r.requests.size(); ++i) {
    const RequestOutcome& q = r.requests[i];
    if (!q.completed && q.error.empty()) {
      r.violations.push_back(absl::StrCat("request ", i, " was lost (no result, no reason)"));
    }
    if (q.completed && q.tokens != reference_[i]) {
      r.violations.push_back(absl::StrCat("request ", i,
                                          " differs from the single-node reference text"));
    }
    if (!q.completed && scenario_.recover() && !root_killed) {
      r.violations.push_back(absl::StrCat("request ", i, " failed although the root is alive "
                                          "and recovery is on: ", q.error));
    }
    if (!q.completed && scenario_.expect_all_complete() && !node_killed) {
      r.violations.push_back(absl::StrCat("request ", i, " failed without a node-killing fault: ",
                                          q.error));
    }
  }
  absl::StatusOr<LlamaConfig> config = LlamaConfigFromGguf(*model_.file);
  for (const auto& [epoch, shards] : state.shards) {
    const auto size = state.session_size.find(epoch);
    if (config.ok() && size != state.session_size.end() &&
        static_cast<int>(shards.size()) == size->second) {
      CheckCoverage(shards, *config, &r.violations);
    }
  }
  r.recoveries = state.recoveries;
  return r;
}

}  // namespace shardlm::sim
