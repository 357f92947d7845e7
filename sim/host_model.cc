#include "sim/host_model.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace shardlm::sim {
namespace {

// Work left below this counts as finished (rounding of virtual time to ns).
constexpr double kDoneSeconds = 1e-9;

}  // namespace

HostModel::HostModel(Simulator* sim, int cores)
    : sim_(sim), cores_(std::max(1, cores)), last_update_(sim->Now()) {}

HostModel::Job HostModel::MakeJob(const Work& work, int threads) {
  Job job;
  job.seconds_left = std::max(work.seconds, 0.0);
  job.bytes_per_second_of_work = work.seconds > 0 ? work.bytes / work.seconds : 0;
  job.host_share = work.seconds > 0 ? work.host_seconds / work.seconds : 0;
  job.threads = std::max(1, threads);
  return job;
}

absl::Duration HostModel::WaitFor(double seconds) {
  return absl::Nanoseconds(std::ceil(std::max(seconds, 0.0) * 1e9));
}

absl::Duration HostModel::SoloFinish(const Work& work, int threads, int cores) {
  // Submit, Reschedule and FinishDue's arithmetic for a job alone on its host.
  Job job = MakeJob(work, threads);
  cores = std::max(1, cores);
  absl::Duration at = absl::ZeroDuration();
  for (;;) {
    const absl::Duration wait = WaitFor(job.seconds_left / SpeedOf(job, job.threads, cores));
    at += wait;
    const double elapsed = absl::ToDoubleSeconds(wait);
    if (elapsed > 0) job.seconds_left -= elapsed * SpeedOf(job, job.threads, cores);
    if (job.seconds_left <= kDoneSeconds) return at;
  }
}

int64_t HostModel::Submit(const Work& work, int threads, std::function<void()> done) {
  Advance();
  const int64_t id = next_id_++;
  Job job = MakeJob(work, threads);
  job.done = std::move(done);
  total_threads_ += job.threads;
  jobs_.emplace(id, std::move(job));
  Reschedule();
  return id;
}

Work HostModel::Cancel(int64_t id) {
  Advance();
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Work{};
  const Job& job = it->second;
  const Work left{job.seconds_left, job.seconds_left * job.bytes_per_second_of_work,
                  job.seconds_left * job.host_share};
  total_threads_ -= job.threads;
  jobs_.erase(it);
  Reschedule();
  return left;
}

double HostModel::SpeedOf(const Job& job, int total_threads, int cores) {
  const double t = static_cast<double>(total_threads);
  double per_thread = std::min(1.0, cores / t);
  if (job.host_share > 0) per_thread = std::min(per_thread, 1 / (job.host_share * t));
  return job.threads * per_thread;
}

void HostModel::Advance() {
  const double elapsed = absl::ToDoubleSeconds(sim_->Now() - last_update_);
  last_update_ = sim_->Now();
  if (elapsed <= 0) return;
  for (auto& [id, job] : jobs_) job.seconds_left -= elapsed * Speed(job);
}

void HostModel::Reschedule() {
  ++generation_;
  if (jobs_.empty()) return;
  double first = INFINITY;
  for (const auto& [id, job] : jobs_) first = std::min(first, job.seconds_left / Speed(job));
  const int64_t generation = generation_;
  const absl::Duration wait = WaitFor(first);
  sim_->After(wait, [this, generation] {
    if (generation == generation_) FinishDue();
  });
}

void HostModel::FinishDue() {
  Advance();
  std::vector<std::function<void()>> finished;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (it->second.seconds_left <= kDoneSeconds) {
      total_threads_ -= it->second.threads;
      finished.push_back(std::move(it->second.done));
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  Reschedule();
  for (auto& done : finished) done();
}

}  // namespace shardlm::sim
