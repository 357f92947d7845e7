// A persistent pool of worker threads for data-parallel loops. Threads are
// created once. ParallelFor cuts [0, n) into contiguous chunks and gives each
// participant (the caller and the workers) a region of consecutive chunks,
// which it runs front to back (one stream through memory); a participant
// that finishes its region takes the remaining chunks of the others from
// their back ends, so a worker the OS has descheduled (a busy shared machine)
// delays nothing. Which thread runs a chunk never changes what the chunk
// computes. Idle workers spin briefly before sleeping, so the short
// back-to-back operations of decoding do not pay a wake-up each.
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
  // The unclaimed chunks [begin, end) of one participant's region, with the
  // job's generation: (generation << 32) | (begin << 16) | end. Its own
  // participant claims at begin, the others at end, by compare-and-swap; a
  // participant still looking at a finished job never matches the next one's
  // generation. Cache-line sized, so owners do not share lines.
  struct alignas(64) Region {
    std::atomic<uint64_t> word{0};
  };
  static bool ShouldWake(WakeArgs* args);
  void WorkerLoop(int self);
  // Claims and runs chunks of job `generation` until none are left: its own
  // region's first, then the others' last ones.
  void RunChunks(uint32_t generation, int self);
  // Claims a chunk of region `r` for job `generation` (from the front when
  // `own`, else from the back); -1 when the region has none left.
  int64_t Claim(uint32_t generation, int r, bool own);

  const int threads_;
  std::vector<std::thread> workers_;
  std::vector<Region> regions_;
  absl::Mutex mu_;  // sleeping workers wait on it; new jobs are posted under it
  // (generation << 32) | chunk count: the job workers wake for.
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
