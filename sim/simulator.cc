#include "sim/simulator.h"

#include <algorithm>
#include <utility>

namespace shardlm::sim {

Simulator::Simulator() = default;

void Simulator::Shutdown() {
  // Killed, a process's calls fail at once instead of parking.
  for (int pid = 0; pid < num_processes(); ++pid) {
    procs_[pid]->killed = true;
    while (!procs_[pid]->finished) RunProcess(pid);
  }
}

Simulator::~Simulator() {
  Shutdown();
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
  }
  for (auto& p : procs_) p->cv.notify_all();
  for (auto& p : procs_) {
    if (p->thread.joinable()) p->thread.join();
  }
}

void Simulator::At(absl::Time at, std::function<void()> fn) {
  queue_.push(Event{std::max(at, now_), seq_++, std::move(fn)});
}

int Simulator::Spawn(std::string name, std::function<void()> body) {
  const int pid = num_processes();
  auto p = std::make_unique<Process>();
  p->name = std::move(name);
  p->parked = true;
  Process* raw = p.get();
  procs_.push_back(std::move(p));
  raw->thread = std::thread([this, pid, raw, body = std::move(body)] {
    {
      std::unique_lock<std::mutex> lock(mu_);
      raw->cv.wait(lock, [&] { return running_ == pid || shutting_down_; });
    }
    if (!raw->killed) body();
    std::lock_guard<std::mutex> lock(mu_);
    raw->finished = true;
    running_ = -1;
    scheduler_cv_.notify_one();
  });
  Wake(pid);
  return pid;
}

void Simulator::RunProcess(int pid) {
  Process& p = *procs_[pid];
  if (p.finished) return;
  p.parked = false;
  current_ = pid;
  std::unique_lock<std::mutex> lock(mu_);
  running_ = pid;
  p.cv.notify_one();
  scheduler_cv_.wait(lock, [&] { return running_ == -1; });
  current_ = -1;
}

void Simulator::YieldToScheduler(int pid) {
  std::unique_lock<std::mutex> lock(mu_);
  running_ = -1;
  scheduler_cv_.notify_one();
  procs_[pid]->cv.wait(lock, [&] { return running_ == pid || shutting_down_; });
}

void Simulator::Park() {
  const int pid = current_;
  if (pid < 0 || procs_[pid]->killed) return;
  procs_[pid]->parked = true;
  YieldToScheduler(pid);
  current_ = pid;
}

void Simulator::SleepFor(absl::Duration d) {
  const int pid = current_;
  const absl::Time until = now_ + d;
  while (now_ < until && pid >= 0 && !procs_[pid]->killed) {
    At(until, [this, pid] { Wake(pid); });
    Park();
  }
}

void Simulator::Wake(int pid) {
  Process& p = *procs_[pid];
  if (!p.parked || p.resume_scheduled || p.finished) return;
  p.resume_scheduled = true;
  const absl::Time at = std::max(now_ + p.slowdown, p.paused_until);
  At(at, [this, pid] {
    Process& q = *procs_[pid];
    if (q.paused_until > now_ && !q.killed) {  // paused after this wake-up was scheduled
      At(q.paused_until, [this, pid] {
        procs_[pid]->resume_scheduled = false;
        RunProcess(pid);
      });
      return;
    }
    q.resume_scheduled = false;
    RunProcess(pid);
  });
}

void Simulator::Pause(int pid, absl::Time until) {
  procs_[pid]->paused_until = std::max(procs_[pid]->paused_until, until);
}

void Simulator::SetSlowdown(int pid, absl::Duration delay) { procs_[pid]->slowdown = delay; }

void Simulator::Kill(int pid) {
  procs_[pid]->killed = true;
  procs_[pid]->paused_until = SimEpoch();  // a crash does not wait for a pause
  procs_[pid]->slowdown = absl::ZeroDuration();
  Wake(pid);
}

int64_t Simulator::Run(absl::Time until) {
  int64_t ran = 0;
  while (!queue_.empty() && queue_.top().at <= until) {
    // top() is const; the event is moved out just before pop().
    Event e = std::move(const_cast<Event&>(queue_.top()));
    queue_.pop();
    now_ = e.at;
    ++events_;
    ++ran;
    e.fn();
  }
  return ran;
}

}  // namespace shardlm::sim
