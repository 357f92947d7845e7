// A persistent pool of worker threads for data-parallel loops. Threads are
// created once. ParallelFor cuts [0, n) into contiguous chunks that the caller
// and the workers claim dynamically, so a worker the OS has descheduled (a
// busy shared machine) delays nothing: the others take its chunks. Which
// thread runs a chunk never changes what the chunk computes. Idle workers spin
// briefly before sleeping, so the short back-to-back operations of decoding
// do not pay a wake-up each.
#ifndef SHARDLM_BACKENDS_CPU_THREAD_POOL_H_
#define SHARDLM_BACKENDS_CPU_THREAD_POOL_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
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

  // Runs fn(begin, end) over a partition of [0, n) into contiguous chunks and
  // returns when all are done. Not reentrant: one ParallelFor at a time.
  // `cost_per_item` (rough scalar operations per item) lets small jobs run on
  // the calling thread alone, where waking the pool would cost more, and
  // cuts large jobs into more chunks (so that the threads finish together).
  void ParallelFor(int64_t n, absl::FunctionRef<void(int64_t, int64_t)> fn,
                   int64_t cost_per_item = 1 << 20);

 private:
  struct WakeArgs {
    const ThreadPool* pool;
    uint32_t seen;
  };
  static bool ShouldWake(WakeArgs* args);
  void WorkerLoop();
  // Claims and runs chunks of job `generation` until none are left.
  void RunChunks(uint32_t generation);

  const int threads_;
  std::vector<std::thread> workers_;
  absl::Mutex mu_;  // sleeping workers wait on it; new jobs are posted under it
  // (generation << 32) | (chunk count << 16) | next unclaimed chunk.
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> chunks_done_{0};
  std::atomic<bool> stop_{false};
  // The current job; written before state_ announces it, read only by a
  // thread that claimed one of its chunks (so it cannot change meanwhile).
  const absl::FunctionRef<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace shardlm

#endif  // SHARDLM_BACKENDS_CPU_THREAD_POOL_H_
