// A host in cost-model mode: its cores and its aggregate kernel throughput
// (memory bandwidth, shared caches, SMT siblings) are shared by the compute
// jobs of the nodes it runs (processor sharing, as an OS scheduler shares
// oversubscribed cores). A job of `threads` threads progresses at
// threads x min(1, cores / T, seconds / (host_seconds x T)) of its
// uncontended single-thread speed (Work in sim/cost_model.h), T being the
// threads of every job running on the host; finish times are recomputed
// whenever a job starts or ends. Events go through the Simulator, so runs
// stay deterministic.
#ifndef SHARDLM_SIM_HOST_MODEL_H_
#define SHARDLM_SIM_HOST_MODEL_H_

#include <cstdint>
#include <functional>
#include <map>

#include "absl/time/time.h"
#include "sim/cost_model.h"
#include "sim/simulator.h"

namespace shardlm::sim {

class HostModel {
 public:
  // `sim` is not owned. `cores` >= 1.
  HostModel(Simulator* sim, int cores);
  HostModel(const HostModel&) = delete;
  HostModel& operator=(const HostModel&) = delete;

  // Starts `work` with `threads` threads now; `done` runs (as a simulator
  // event) when it is finished. Returns the job's id.
  int64_t Submit(const Work& work, int threads, std::function<void()> done);
  // Stops job `id` (a crashed or paused node) without running its `done`;
  // returns the work it had left (nothing when it is unknown or finished).
  Work Cancel(int64_t id);

  // Jobs running now.
  int active() const { return static_cast<int>(jobs_.size()); }

  // How long after its Submit a job of `work` (seconds > 0) with `threads`
  // threads finishes on an idle host of `cores` cores when nothing else is
  // submitted or cancelled meanwhile: exactly when Submit's `done` would
  // run, for callers that skip the simulation of such a job.
  static absl::Duration SoloFinish(const Work& work, int threads, int cores);

 private:
  struct Job {
    double seconds_left = 0;  // single-thread seconds
    double bytes_per_second_of_work = 0;
    double host_share = 0;  // host_seconds / seconds (0: no shared limit)
    int threads = 1;
    std::function<void()> done;
  };
  static Job MakeJob(const Work& work, int threads);
  // Jobs' progress from last_update_ to now.
  void Advance();
  // Single-thread seconds of work per second for `job` on a host of `cores`
  // cores running `total_threads` threads.
  static double SpeedOf(const Job& job, int total_threads, int cores);
  double Speed(const Job& job) const { return SpeedOf(job, total_threads_, cores_); }
  // `seconds` of virtual time rounded up to whole nanoseconds, so that a
  // job due then is done when the event runs.
  static absl::Duration WaitFor(double seconds);
  // Schedules the next finish (older schedules become stale).
  void Reschedule();
  void FinishDue();

  Simulator* sim_;
  const int cores_;
  std::map<int64_t, Job> jobs_;  // ordered: deterministic iteration
  int total_threads_ = 0;
  int64_t next_id_ = 0;
  int64_t generation_ = 0;
  absl::Time last_update_;
};

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_HOST_MODEL_H_
