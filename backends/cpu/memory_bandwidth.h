// Memory read bandwidth of this machine, measured the way a decode step
// reads weights: every thread streams its contiguous share of a buffer much
// larger than the caches. `shardlm bench` reports decode speed against it.
#ifndef SHARDLM_BACKENDS_CPU_MEMORY_BANDWIDTH_H_
#define SHARDLM_BACKENDS_CPU_MEMORY_BANDWIDTH_H_

#include <cstddef>

#include "absl/status/statusor.h"

namespace shardlm {

// Allocates `bytes`, touches them, then reads them several times with
// `threads` threads (0: one per core), each summing its contiguous slice with
// wide loads; returns the best pass in GB/s (1e9 bytes per second).
// InvalidArgument for a negative thread count or a buffer under 1 MiB,
// ResourceExhausted when the buffer cannot be allocated.
absl::StatusOr<double> MeasureReadBandwidth(int threads, size_t bytes = size_t{1} << 30);

}  // namespace shardlm

#endif  // SHARDLM_BACKENDS_CPU_MEMORY_BANDWIDTH_H_
