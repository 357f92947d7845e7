// Time as the engine sees it. core/ never reads the wall clock or sleeps
// except through a Clock it was given; the simulator injects a virtual one.
#ifndef SHARDLM_CORE_CLOCK_H_
#define SHARDLM_CORE_CLOCK_H_

#include <functional>
#include <memory>

#include "absl/time/time.h"

namespace shardlm {

class Clock {
 public:
  virtual ~Clock() = default;
  // Current time. Monotonic for a given Clock.
  virtual absl::Time Now() const = 0;
  // Blocks the caller (or, under a virtual clock, the simulated node) for `d`.
  virtual void SleepFor(absl::Duration d) = 0;
};

// The real clock: monotonic-enough wall time and real sleeps.
class RealClock : public Clock {
 public:
  absl::Time Now() const override;
  void SleepFor(absl::Duration d) override;
};

// A manually advanced clock for tests: Now() moves only via Advance/SleepFor.
class ManualClock : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::UnixEpoch()) : now_(start) {}
  absl::Time Now() const override { return now_; }
  void SleepFor(absl::Duration d) override { now_ += d; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_CLOCK_H_
