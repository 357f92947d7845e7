#include "core/clock.h"

#include "absl/time/clock.h"

namespace shardlm {

absl::Time RealClock::Now() const { return absl::Now(); }

void RealClock::SleepFor(absl::Duration d) { absl::SleepFor(d); }

}  // namespace shardlm
