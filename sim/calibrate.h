// `shardlm sim --calibrate`: measures this machine into a CostModel
// (sim/cost_model.proto) with the CPU backend's own kernels (fast numerics,
// one thread), the bench's memory-bandwidth measurement, SHA-256, and the
// real TCP transport over loopback for the link figures. Takes well under a
// minute. Timing reads `clock` (the real clock), never the wall clock
// directly.
#ifndef SHARDLM_SIM_CALIBRATE_H_
#define SHARDLM_SIM_CALIBRATE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/dtype.h"
#include "sim/cost_model.pb.h"

namespace shardlm::sim {

struct CalibrateOptions {
  Clock* clock = nullptr;  // required; not owned
  // Hears one line per measurement (progress).
  std::function<void(const std::string&)> progress;
  // Each timed loop runs at least this long (shorter: faster, noisier).
  double min_seconds = 0.4;
  // The one matrix of the one-matrix decode rates, well past the last-level
  // cache so that the kernel streams it from memory.
  int64_t decode_matrix_mib = 160;
  // Decode as nodes run it: the layer-shaped footprints measured (MiB,
  // ascending), the MiB of each matrix size in the per-product line fit,
  // and each node's set in the collective loops. Smaller sets fit in cache
  // and measure the wrong thing; tests use them to run quickly.
  std::vector<int64_t> footprint_mib = {64, 128, 256, 512, 1024};
  int64_t product_set_mib = 192;
  int64_t collective_set_mib = 128;
};

// Measures the compute side: cores, memory bandwidth, matmul rates of f32,
// f16, q8_0 and q4_0, attention, small ops and SHA-256.
absl::Status CalibrateCompute(const CalibrateOptions& options, CostModel* model);

// What one decode product of `type` loses at its start and end, and the
// decode rates of layer-shaped sets of o.footprint_mib, one thread and
// `cores` at once: fills `rate`'s decode_gbps, decode_product_us and
// decode_footprint. InvalidArgument when the footprints are not ascending.
absl::Status CalibrateDecode(const CalibrateOptions& options, DType type, int cores,
                             MatMulRate* rate);

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
