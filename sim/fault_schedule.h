// Turning a scenario's faults (and the ones its seed draws within the
// scenario's bounds) into simulator events on the network and processes.
#ifndef SHARDLM_SIM_FAULT_SCHEDULE_H_
#define SHARDLM_SIM_FAULT_SCHEDULE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/scenario.pb.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"

namespace shardlm::sim {

// The scenario's fixed faults plus `random.count` drawn from `seed`, sorted
// by time (ties in their original order). Deterministic in its inputs.
std::vector<Fault> DrawFaults(const Scenario& scenario, uint64_t seed);

// One line describing `fault` ("12.5 ms: crash node 2").
std::string DescribeFault(const Fault& fault);

// Whether `kind` stops a node (the run may then fail its requests).
bool KillsANode(Fault::Kind kind);

// What a fault needs beyond the network: the process of each node, and a
// way to restart a node (spawn its code anew; returns the new pid).
struct FaultTargets {
  std::vector<int>* pids = nullptr;  // index node
  std::function<int(int node)> restart;
};

// Schedules every fault of `faults` on `sim` and `net`.
void ScheduleFaults(const std::vector<Fault>& faults, Simulator* sim, SimNetwork* net,
                    const FaultTargets& targets);

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_FAULT_SCHEDULE_H_
