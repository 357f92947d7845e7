// GPU memory read bandwidth, for `shardlm bench --backend cuda`: measured
// with a streaming read kernel and set against the device's peak.
#ifndef SHARDLM_BACKENDS_CUDA_DEVICE_BANDWIDTH_H_
#define SHARDLM_BACKENDS_CUDA_DEVICE_BANDWIDTH_H_

#include <string>

#include "absl/status/statusor.h"

namespace shardlm::cuda {

struct DeviceBandwidth {
  std::string device;         // "cuda:0 (NVIDIA H100 80GB HBM3)"
  double measured_gb_per_s;   // best of several passes over 1 GiB, 1e9 B/s
  double peak_gb_per_s;       // from memory clock and bus width (0: unknown)
};

// Measures device `ordinal`. In a build without CUDA: FailedPrecondition.
absl::StatusOr<DeviceBandwidth> MeasureDeviceBandwidth(int ordinal);

}  // namespace shardlm::cuda

#endif  // SHARDLM_BACKENDS_CUDA_DEVICE_BANDWIDTH_H_
