// The discrete-event core of the simulator: a virtual clock, an event queue
// ordered by (virtual time, sequence number), and cooperative processes.
//
// A process is ordinary blocking code (the real root or worker) running on
// an OS thread of its own, but only while the simulator hands it control:
// exactly one process or event runs at a time, and control changes hands
// only at the simulator's calls (Park, SleepFor, process exit). So a run is
// a pure function of the scheduled events, the processes' code and the
// seed, whatever the OS scheduler does.
#ifndef SHARDLM_SIM_SIMULATOR_H_
#define SHARDLM_SIM_SIMULATOR_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace shardlm::sim {

// Where every simulation starts.
inline absl::Time SimEpoch() { return absl::UnixEpoch(); }

class Simulator {
 public:
  Simulator();
  // Shutdown(), then joins every process thread.
  ~Simulator();

  // Kills every unfinished process and lets each unwind, one at a time
  // (its simulator calls return at once). Call it before destroying what
  // the processes use (network, transports).
  void Shutdown();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  absl::Time Now() const { return now_; }

  // Runs `fn` (on the simulator's thread, with no process running) at `at`
  // (clamped to Now()). Events of equal time run in scheduling order.
  void At(absl::Time at, std::function<void()> fn);
  void After(absl::Duration d, std::function<void()> fn) { At(now_ + d, std::move(fn)); }

  // Starts a process running `body` at the current virtual time. Returns
  // its id (0, 1, ... in spawn order).
  int Spawn(std::string name, std::function<void()> body);

  // Runs events and processes until nothing is left to do or virtual time
  // would pass `until`. Returns the number of events run.
  int64_t Run(absl::Time until = absl::InfiniteFuture());

  // --- Calls made from inside a process ---
  // The id of the running process (-1 on the simulator's thread).
  int current() const { return current_; }
  // Gives control back until Wake(current()) resumes this process.
  void Park();
  // Advances this process's time by `d` (other events run meanwhile).
  void SleepFor(absl::Duration d);

  // --- Calls made from events (or processes) ---
  // Makes a parked process runnable at the current time. Waking a process
  // that is not parked, or twice, is harmless.
  void Wake(int pid);
  // Marks a process killed (fail-stop): it is woken, and from then on the
  // simulated transport fails its calls so its code unwinds and returns.
  void Kill(int pid);
  // Gray failure: the process does not run (its wake-ups wait) until
  // `until`.
  void Pause(int pid, absl::Time until);
  // A slow node: every time the process is woken it runs `delay` later
  // (0: normal speed).
  void SetSlowdown(int pid, absl::Duration delay);
  bool killed(int pid) const { return procs_[pid]->killed; }
  bool finished(int pid) const { return procs_[pid]->finished; }
  const std::string& name(int pid) const { return procs_[pid]->name; }
  int num_processes() const { return static_cast<int>(procs_.size()); }

  // Events run so far.
  int64_t events() const { return events_; }
  // When the next scheduled event is due (InfiniteFuture() when none is).
  absl::Time NextEventTime() const {
    return queue_.empty() ? absl::InfiniteFuture() : queue_.top().at;
  }

 private:
  struct Event {
    absl::Time at;
    int64_t seq;
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  struct Process {
    std::string name;
    std::thread thread;
    bool parked = false;   // waiting for Wake
    bool resume_scheduled = false;
    bool killed = false;
    bool finished = false;
    absl::Time paused_until = SimEpoch();
    absl::Duration slowdown = absl::ZeroDuration();
    std::condition_variable cv;  // wakes this process's thread only
  };

  // Hands control to `pid` and waits until it parks or finishes.
  void RunProcess(int pid);
  // Inside a process: hands control back and waits to be resumed.
  void YieldToScheduler(int pid);

  absl::Time now_ = SimEpoch();
  int64_t seq_ = 0;
  int64_t events_ = 0;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::vector<std::unique_ptr<Process>> procs_;

  // Control hand-off between the simulator's thread and process threads.
  std::mutex mu_;
  std::condition_variable scheduler_cv_;  // wakes the simulator's thread
  int running_ = -1;     // who holds control: -1 the simulator, else a pid
  int current_ = -1;     // the process running now (read by its own thread)
  bool shutting_down_ = false;
};

// A Clock on the simulator's virtual time: SleepFor parks the calling
// process for that long.
class SimClock : public Clock {
 public:
  explicit SimClock(Simulator* sim) : sim_(sim) {}
  absl::Time Now() const override { return sim_->Now(); }
  void SleepFor(absl::Duration d) override { sim_->SleepFor(d); }

 private:
  Simulator* sim_;
};

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_SIMULATOR_H_
