// One run of a cost-model scenario (sim/cost_sim.h): the event-driven state
// machine of the root's requests, steps and phases, the nodes' compute jobs
// on their hosts, the collectives, the faults and the recoveries.
#ifndef SHARDLM_SIM_COST_RUN_H_
#define SHARDLM_SIM_COST_RUN_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/shard_plan.h"
#include "sim/cost_model.h"
#include "sim/cost_sim.h"
#include "sim/host_model.h"
#include "sim/simulator.h"

namespace shardlm::sim {

class CostRun {
 public:
  CostRun(const CostSetup& setup, const OpCosts& costs, uint64_t seed);
  CostRun(const CostRun&) = delete;
  CostRun& operator=(const CostRun&) = delete;

  // Runs every request to the end; the report of what happened.
  absl::StatusOr<CostRunReport> Run();

 private:
  // Where a step is: chunk `chunk`, phase `phase` (-1: the command
  // broadcast; 0: embedding; 1..2L: attention and FFN of each layer;
  // 2L+1: output layer and greedy exchange).
  struct Step {
    int64_t tokens = 0;
    int64_t position = 0;
    int chunk = 0;
    int phase = -1;
    absl::Time start;
    std::function<void()> done;
  };
  struct NodeState {
    bool alive = true;
    bool vanished = false;       // gone silently: peers wait for their deadlines
    absl::Time paused_until;
    absl::Time slow_until;
    absl::Duration slow_extra;
    int64_t job = -1;            // running compute job on its host
    Work left;                   // work a pause interrupted
    bool waiting = false;        // member of the current phase, not arrived yet
    std::optional<NodeShard> held;  // streamed slices it keeps from its last session
  };

  void ScheduleFaults(const std::vector<Fault>& faults);
  void ApplyFault(const Fault& f);
  void Crash(int node, bool vanish);
  void PauseNode(int node, absl::Time until);

  // Requests.
  void StartRequest(size_t index);
  void Decode(size_t request, int64_t left);
  void FailRemaining(const std::string& why);
  // A new session over the live nodes, then `then`.
  void NewSession(std::function<void()> then);
  absl::Duration SetupTime() const;

  // Steps and phases.
  void RunStep(int64_t tokens, std::function<void()> done);
  void StartPhase();
  // Runs the phase StartPhase starts without simulating its jobs when
  // nothing can touch them (see cost_run.cc); false when it cannot.
  bool TryQuietPhase();
  Work PhaseWork(int member) const;
  void SubmitJob(int member, const Work& work);
  void Arrive(int member);
  void FinishCollective();
  void EndPhase(uint64_t generation);
  absl::Duration CollectiveTime(int64_t tokens);
  void CheckDeadline(uint64_t generation);
  // Only dead members are left to arrive: a reset is seen now, a vanished
  // node at the collective's deadline.
  void NoticeDeadMembers();
  // The step failed at Now() (`cause`); recovers or gives up.
  void Fail(const std::string& cause);
  void Recover(const std::string& cause, absl::Duration detect);

  int Host(int node) const { return node / setup_.nodes_per_host; }
  int64_t ChunkTokens() const;
  int layers() const { return static_cast<int>(setup_.config.n_layers); }

  const CostSetup& setup_;
  const OpCosts& costs_;
  const uint64_t seed_;
  std::mt19937_64 rng_;
  Simulator sim_;
  std::vector<std::unique_ptr<HostModel>> hosts_;
  std::vector<NodeState> nodes_;
  std::vector<int> members_;                 // plan node i is physical node members_[i]
  std::vector<uint64_t> stream_bytes_;       // per plan node: weights the session streams
  std::optional<ShardPlan> plan_;
  // Per plan node: the position-independent work of a one-token step.
  struct DecodeWork {
    Work attention_weights, ffn, output;
  };
  std::vector<DecodeWork> decode_work_;
  std::map<std::pair<int, int64_t>, absl::Duration> collective_cache_;  // (kind, tokens)
  Step step_;
  uint64_t generation_ = 0;                  // bumps when a step fails: stale events drop
  int pending_ = 0;                          // members of the phase not arrived
  int dead_waiting_ = 0;                     // of which dead
  absl::Time first_arrival_;
  bool oversubscribed_ = false;              // some host runs more threads than cores
  bool own_hosts_ = false;                   // every member on a host of its own
  int64_t position_ = 0;
  bool failed_all_ = false;
  absl::Time timeout_start_;
  CostRunReport report_;
};

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_COST_RUN_H_
