#include "backends/cpu/thread_pool.h"

#include <algorithm>

namespace shardlm {

ThreadPool::ThreadPool(int threads) : threads_(std::max(1, threads)) {
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunChunk(int index) {
  const int64_t begin = n_ * index / threads_;
  const int64_t end = n_ * (index + 1) / threads_;
  if (begin < end) (*fn_)(begin, end);
}

bool ThreadPool::ShouldWake(WakeArgs* args) {
  return args->pool->stop_ || args->pool->generation_ != args->seen;
}

void ThreadPool::WorkerLoop(int index) {
  WakeArgs args{this, 0};
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&ShouldWake, &args));
      if (stop_) return;
      args.seen = generation_;
    }
    RunChunk(index);
    absl::MutexLock lock(&mu_);
    --pending_;
  }
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                             int64_t cost_per_item) {
  constexpr int64_t kMinParallelCost = 1 << 15;
  if (threads_ == 1 || n <= 1 || n * cost_per_item < kMinParallelCost) {
    if (n > 0) fn(0, n);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    fn_ = &fn;
    n_ = n;
    pending_ = threads_ - 1;
    ++generation_;
  }
  RunChunk(0);
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* pending) { return *pending == 0; }, &pending_));
}

}  // namespace shardlm
