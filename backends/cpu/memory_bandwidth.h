// Memory read bandwidth of this machine, measured the way a decode step
// reads weights: every thread streams its contiguous share of a buffer much
// larger than the caches. `shardlm bench` reports decode speed against it.
#ifndef SHARDLM_BACKENDS_CPU_MEMORY_BANDWIDTH_H_
#define SHARDLM_BACKENDS_CPU_MEMORY_BANDWIDTH_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace shardlm {

// A buffer, allocated and touched once, that `threads` threads read to
// measure bandwidth. Measurements can therefore be repeated cheaply and
// interleaved with other work, so that both see the same machine (a shared
// host's bandwidth can change by half within minutes).
class ReadBandwidthProbe {
 public:
  // `threads` 0: one per core. InvalidArgument for a negative thread count
  // or a buffer under 1 MiB, ResourceExhausted when it cannot be allocated.
  static absl::StatusOr<std::unique_ptr<ReadBandwidthProbe>> Create(
      int threads, size_t bytes = size_t{1} << 30);
  ~ReadBandwidthProbe();
  ReadBandwidthProbe(const ReadBandwidthProbe&) = delete;
  ReadBandwidthProbe& operator=(const ReadBandwidthProbe&) = delete;

  // Reads the whole buffer `passes` (>= 1) times, each thread summing its
  // contiguous slice with wide loads; returns the best pass in GB/s (1e9
  // bytes per second). Internal error if the data reads back wrong.
  absl::StatusOr<double> Measure(int passes);

  int threads() const { return threads_; }
  size_t bytes() const { return bytes_; }

 private:
  ReadBandwidthProbe(int threads, size_t bytes, void* buffer);

  const int threads_;
  const size_t bytes_;
  void* const buffer_;  // aligned_alloc'ed, bytes_ long
};

// A one-off ReadBandwidthProbe: the best of 4 passes over `bytes`.
absl::StatusOr<double> MeasureReadBandwidth(int threads, size_t bytes = size_t{1} << 30);

}  // namespace shardlm

#endif  // SHARDLM_BACKENDS_CPU_MEMORY_BANDWIDTH_H_
