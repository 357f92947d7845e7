// A persistent pool of worker threads for data-parallel loops. Threads are
// created once; ParallelFor splits [0, n) into contiguous chunks, one per
// thread, so the split (and any per-chunk result) depends only on n and the
// thread count. Idle workers spin briefly before sleeping, so the short,
// back-to-back operations of token-by-token decoding do not pay a wake-up.
#ifndef SHARDLM_BACKENDS_CPU_THREAD_POOL_H_
#define SHARDLM_BACKENDS_CPU_THREAD_POOL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace shardlm {

class ThreadPool {
 public:
  // `threads` >= 1 participants, the caller included (threads - 1 are spawned).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Runs fn(begin, end) over a partition of [0, n) and returns when all
  // chunks are done. Not reentrant: one ParallelFor at a time per pool.
  // `cost_per_item` (rough scalar operations per item) lets small jobs run on
  // the calling thread alone, where waking the pool would cost more.
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                   int64_t cost_per_item = 1 << 20);

 private:
  struct WakeArgs {
    const ThreadPool* pool;
    uint64_t seen;
  };
  static bool ShouldWake(WakeArgs* args);
  void WorkerLoop(int index);
  void RunChunk(int index);

  const int threads_;
  std::vector<std::thread> workers_;
  absl::Mutex mu_;  // sleeping workers wait on it; generation_ moves under it
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace shardlm

#endif  // SHARDLM_BACKENDS_CPU_THREAD_POOL_H_
