// `shardlm sim --calibrate`: measures this machine into a CostModel
// (sim/cost_model.proto) with the CPU backend's own kernels (fast numerics,
// one thread), the bench's memory-bandwidth measurement, SHA-256, and the
// real TCP transport over loopback for the link figures. Takes well under a
// minute. Timing reads `clock` (the real clock), never the wall clock
// directly.
#ifndef SHARDLM_SIM_CALIBRATE_H_
#define SHARDLM_SIM_CALIBRATE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "sim/cost_model.pb.h"

namespace shardlm::sim {

struct CalibrateOptions {
  Clock* clock = nullptr;  // required; not owned
  // Hears one line per measurement (progress).
  std::function<void(const std::string&)> progress;
  // Each timed loop runs at least this long (shorter: faster, noisier).
  double min_seconds = 0.4;
};

// Measures the compute side: cores, memory bandwidth, matmul rates of f32,
// f16, q8_0 and q4_0, attention, small ops and SHA-256.
absl::Status CalibrateCompute(const CalibrateOptions& options, CostModel* model);

// Measures loopback TCP between two ranks of the real TcpTransport:
// ping-pong latency, per-message cost of a stream of small messages, bulk
// bandwidth, (`wakeup_us`) the extra delay per hop while busy threads
// occupy every core, and (`busy_collective_us`) the extra delay per collective
// between two nodes that compute between their exchanges.
absl::Status CalibrateLink(const CalibrateOptions& options, LinkCost* link, double* wakeup_us,
                           double* busy_collective_us);

// Both.
absl::StatusOr<CostModel> Calibrate(const CalibrateOptions& options);

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_CALIBRATE_H_
