// Runs a scenario (sim/scenario.proto) in functional mode: the real root
// and worker code (core/cluster_setup.h, core/cluster_session.h) on
// simulated nodes, with real kernels on a small model, the scenario's
// faults plus the ones its seed draws, and the invariants checked at the
// end. A run is a pure function of (scenario, seed, code): same seed, same
// trace hash.
#ifndef SHARDLM_SIM_SCENARIO_RUNNER_H_
#define SHARDLM_SIM_SCENARIO_RUNNER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/cluster_setup.h"
#include "core/recovering_cluster.h"
#include "core/tokenizer.h"
#include "sim/scenario.pb.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"

namespace shardlm::sim {

// What a replay (sim/replay.h) may do to the nodes while the root runs;
// called on the root's process, each takes effect before it returns.
struct RunControl {
  std::function<void(int node)> crash;    // fail-stop
  std::function<void(int node)> restart;  // a fresh process on the node (crashed first if alive)
};

struct SimRunOptions {
  uint64_t seed = 1;
  // Test hook: node 1 loads its FFN slice one row off (a sharding bug the
  // invariants must catch).
  bool inject_plan_bug = false;
  // Sees every network event as it happens (traces).
  std::function<void(const NetEvent&)> observer;
  // Replays (recover: true only; may be null): wraps the root's transport
  // of each session (see SimSessionConfig).
  std::function<std::unique_ptr<Transport>(int32_t epoch, const std::vector<int>& nodes,
                                           Transport* inner, const RunControl& control)>
      wrap_root_session;
};

struct RequestOutcome {
  bool completed = false;
  std::vector<int32_t> tokens;  // generated
  std::string text;             // generated, detokenized
  std::string error;            // why it failed (empty when completed)
};

struct SimRunReport {
  uint64_t seed = 0;
  int nodes = 0;                        // the cluster's size in this run
  std::vector<RequestOutcome> requests;
  std::vector<std::string> faults;      // what was injected, in time order
  std::vector<Fault::Kind> fault_kinds;  // their kinds, in the same order
  std::vector<std::string> violations;  // broken invariants (empty: all held)
  int64_t events = 0;                   // simulator events
  int64_t messages = 0;                 // network sends
  absl::Duration virtual_time;
  uint64_t trace_hash = 0;
  std::vector<RecoveryEvent> recoveries;  // lost workers recovered from (recover: true)
};

class ScenarioRunner {
 public:
  // Loads the model (path relative to `scenario_dir`, then
  // ../shared/models; or a synthetic preset written to a temporary file)
  // and the single-node reference text of every request.
  static absl::StatusOr<std::unique_ptr<ScenarioRunner>> Create(const Scenario& scenario,
                                                                const std::string& scenario_dir);

  // One run with `options.seed`.
  absl::StatusOr<SimRunReport> Run(const SimRunOptions& options) const;

  const Scenario& scenario() const { return scenario_; }
  // Raw SHA-256 of the model file the scenario runs.
  const std::string& model_sha256() const { return model_.sha256; }

  struct RunState;  // defined in the .cc

 private:
  ScenarioRunner() = default;
  // Rank 0's code: session setup, then every request in turn.
  void RunRoot(const SessionSettings& settings, Transport* transport, Clock* clock,
               RunState* state) const;
  // Rank 0's code with recovery: a RecoveringCluster over simulated
  // sessions of whichever workers answer.
  void RunRecoveringRoot(const SessionSettings& settings, SimNetwork* net, Transport* transport,
                         Clock* clock, RunState* state) const;
  // The invariants, checked on what the run left behind.
  SimRunReport Report(const SimRunOptions& options, const Simulator& sim,
                      const SimNetwork& net, const std::vector<Fault>& faults,
                      const RunState& state) const;

  Scenario scenario_;
  ModelSource model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<std::vector<int32_t>> prompts_;    // per request, with BOS
  std::vector<std::vector<int32_t>> reference_;  // per request, single-node greedy tokens
  std::vector<int> shares_;
};

// Parses a scenario from text format; errors name `source` and the line.
absl::StatusOr<Scenario> ParseScenario(const std::string& text, const std::string& source);
// Reads and parses the file at `path`.
absl::StatusOr<Scenario> LoadScenario(const std::string& path);

// The node count a seed runs on: cluster.nodes, or with max_nodes a draw
// from [nodes, max_nodes] (deterministic in the seed).
int NodesForSeed(const Cluster& cluster, uint64_t seed);

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_SCENARIO_RUNNER_H_
