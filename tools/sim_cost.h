// The cost-model side of `shardlm sim`: running COST_MODEL scenarios
// (sim/cost_sim.h) and `--calibrate` (sim/calibrate.h).
#ifndef SHARDLM_TOOLS_SIM_COST_H_
#define SHARDLM_TOOLS_SIM_COST_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "sim/scenario.pb.h"

namespace shardlm::cli {

// Runs `scenario` (mode COST_MODEL, from folder `dir`) for seeds
// [first, last]; prints the predicted prefill and decode tokens/s, the
// simulated and wall time, events and events/s, and each recovery's
// timeline. With `check_determinism` every seed runs twice and must give
// the same result. Sets `*failures` to the runs that lost requests or were
// not deterministic.
absl::Status RunCostScenario(const sim::Scenario& scenario, const std::string& dir,
                             uint64_t first, uint64_t last, bool check_determinism,
                             int* failures);

// Measures this machine and writes the cost model to `out`; progress on
// stderr.
absl::Status RunCalibrate(const std::string& out);

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_SIM_COST_H_
