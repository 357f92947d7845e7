// Cost-model mode of the simulator: a scenario (sim/scenario.proto, mode
// COST_MODEL) runs at op and collective granularity on the Simulator's
// event loop, without computing anything. Per token and layer, every node
// runs a compute job whose work comes from the cost model (sim/cost_model.h)
// applied to its real ShardPlan slice, on a host whose cores and memory
// bandwidth it may share with other nodes (sim/host_model.h); every
// collective then finishes its algorithm's real traffic
// (transport/collectives.h) over the link model after the slowest node has
// arrived. Crashes cost a recovery (detection, re-plan with weight
// streaming, KV rebuild as a prefill of the tokens so far), as
// core/recovering_cluster.h does it. A run is a pure function of
// (scenario, cost model, seed).
#ifndef SHARDLM_SIM_COST_SIM_H_
#define SHARDLM_SIM_COST_SIM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/model_config.h"
#include "core/recovering_cluster.h"
#include "core/shard_plan.h"
#include "sim/cost_model.h"
#include "sim/scenario.pb.h"
#include "transport/collectives.h"

namespace shardlm::sim {

// What a cost-model run predicts.
struct CostRunReport {
  uint64_t seed = 0;
  int nodes = 0;
  int64_t prompt_tokens = 0;   // prefilled, all requests
  int64_t decode_tokens = 0;   // decoded one at a time, all requests
  absl::Duration prefill_time;
  absl::Duration decode_time;  // recoveries during decoding included
  absl::Duration virtual_time;
  int64_t events = 0;
  int64_t collectives = 0;
  std::vector<std::string> faults;         // what was injected, in time order
  std::vector<RecoveryEvent> recoveries;
  std::vector<std::string> failed;         // requests that could not complete, and why
  uint64_t trace_hash = 0;                 // over every step's end time

  double prefill_tokens_per_s() const;
  double decode_tokens_per_s() const;
};

// Everything a run needs that does not depend on the seed.
struct CostSetup {
  Scenario scenario;
  LlamaConfig config;
  PlanWeightInfo weights;
  CostModel model;  // link overridden by the scenario's where set
  WireFormat wire = WireFormat::kQ8_0;
  AllReduceAlgorithm algorithm = AllReduceAlgorithm::kAuto;
  int threads = 1;
  int nodes_per_host = 1;
  int64_t max_batch = 64;
};

class CostSimulation {
 public:
  // `scenario` must be in COST_MODEL mode; its cost model file is read
  // relative to `scenario_dir` (then as given). One-line errors.
  static absl::StatusOr<std::unique_ptr<CostSimulation>> Create(const Scenario& scenario,
                                                                const std::string& scenario_dir);
  // The same with the cost model given.
  static absl::StatusOr<std::unique_ptr<CostSimulation>> Create(const Scenario& scenario,
                                                                const CostModel& model);

  // One run with `seed` (it draws the scenario's random faults and link jitter).
  absl::StatusOr<CostRunReport> Run(uint64_t seed) const;

  const CostSetup& setup() const { return setup_; }

 private:
  explicit CostSimulation(CostSetup setup, OpCosts costs)
      : setup_(std::move(setup)), costs_(std::move(costs)) {}
  CostSetup setup_;
  OpCosts costs_;
};

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_COST_SIM_H_
