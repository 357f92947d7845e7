// Replaying a recorded real run (`generate --record FILE` over TCP or MPI)
// on the simulator: the same cluster, model and requests, the recorded
// workers lost just before the root's call that failed, and restarted
// workers brought back before the session that took them in. The root's
// calls are compared one by one with the recording (rank, tag, size,
// payload hash, outcome), and the tokens with the recorded ones.
#ifndef SHARDLM_SIM_REPLAY_H_
#define SHARDLM_SIM_REPLAY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/run_record.pb.h"
#include "sim/scenario.pb.h"
#include "sim/scenario_runner.h"

namespace shardlm::sim {

struct ReplayReport {
  SimRunReport run;               // the simulated run (trace hash, recoveries, ...)
  int64_t ops_compared = 0;       // root calls checked against the recording
  int64_t ops_recorded = 0;
  int sessions_recorded = 0;
  int sessions_replayed = 0;
  std::string divergence;         // the first difference; empty: none
  bool matches() const { return divergence.empty(); }
};

// The scenario that replays `recording` (model path as recorded).
absl::StatusOr<Scenario> ReplayScenario(const record::Recording& recording);

// Runs the replay with `seed` (it only moves link jitter, which the
// scenario leaves at zero) and compares. Errors: a recording that cannot
// be replayed (not exact numerics, model missing or changed).
absl::StatusOr<ReplayReport> Replay(const record::Recording& recording, uint64_t seed,
                                    const std::function<void(const NetEvent&)>& observer = nullptr);

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_REPLAY_H_
