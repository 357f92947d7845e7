#include "backends/cpu/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace shardlm {
namespace {

// Polls before a worker sleeps (~tens of microseconds).
constexpr int kSpinLimit = 20000;

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(std::max(1, threads)) {
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_.store(true, std::memory_order_release);
  }
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunChunk(int index) {
  const int64_t begin = n_ * index / threads_;
  const int64_t end = n_ * (index + 1) / threads_;
  if (begin < end) (*fn_)(begin, end);
}

bool ThreadPool::ShouldWake(WakeArgs* args) {
  return args->pool->stop_.load(std::memory_order_acquire) ||
         args->pool->generation_.load(std::memory_order_acquire) != args->seen;
}

void ThreadPool::WorkerLoop(int index) {
  WakeArgs args{this, 0};
  while (true) {
    int spins = 0;
    while (!ShouldWake(&args)) {
      if (++spins < kSpinLimit) {
        CpuRelax();
        continue;
      }
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&ShouldWake, &args));
    }
    if (stop_.load(std::memory_order_acquire)) return;
    args.seen = generation_.load(std::memory_order_acquire);
    RunChunk(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                             int64_t cost_per_item) {
  constexpr int64_t kMinParallelCost = 1 << 15;
  if (threads_ == 1 || n <= 1 || n * cost_per_item < kMinParallelCost) {
    if (n > 0) fn(0, n);
    return;
  }
  fn_ = &fn;
  n_ = n;
  pending_.store(threads_ - 1, std::memory_order_relaxed);
  {
    // Under the mutex so that sleeping workers re-check their condition.
    absl::MutexLock lock(&mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  RunChunk(0);
  int spins = 0;
  while (pending_.load(std::memory_order_acquire) != 0) {
    if (++spins < kSpinLimit) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace shardlm
