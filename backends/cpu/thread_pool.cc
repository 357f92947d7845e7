#include "backends/cpu/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace shardlm {
namespace {

// Polls before an idle worker sleeps (tens of microseconds).
constexpr int kSpinLimit = 20000;
// Chunks per participant: enough to rebalance around a slow thread.
constexpr int64_t kChunksPerThread = 4;
// Large jobs get more chunks, of about this cost each, so that the threads
// finish together (the last chunk of a thread is the imbalance).
constexpr int64_t kChunkCost = int64_t{1} << 18;

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// The job word: generation (32 bits) | chunk count (16) | next chunk (16).
// Keeping the count in the same atomic word as the claim counter means a
// worker still looking at a finished job sees next == count and can never
// claim a chunk of the job that replaces it.
constexpr int64_t kMaxChunks = 0xffff;

inline uint32_t GenerationOf(uint64_t state) { return static_cast<uint32_t>(state >> 32); }
inline int64_t ChunksOf(uint64_t state) { return static_cast<int64_t>((state >> 16) & 0xffff); }
inline int64_t NextOf(uint64_t state) { return static_cast<int64_t>(state & 0xffff); }

}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(std::max(1, threads)) {
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_.store(true, std::memory_order_release);
  }
  for (std::thread& t : workers_) t.join();
}

bool ThreadPool::ShouldWake(WakeArgs* args) {
  return args->pool->stop_.load(std::memory_order_acquire) ||
         GenerationOf(args->pool->state_.load(std::memory_order_acquire)) != args->seen;
}

void ThreadPool::RunChunks(uint32_t generation) {
  uint64_t state = state_.load(std::memory_order_acquire);
  while (GenerationOf(state) == generation && NextOf(state) < ChunksOf(state)) {
    if (!state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      continue;  // `state` was reloaded
    }
    // Claim c takes chunk c / T of region c % T (the job cut into T equal
    // regions): threads that claim in turn each stream one region front to
    // back, so the memory prefetchers see long runs, not a jump a chunk.
    const int64_t chunks = ChunksOf(state);
    const int64_t per_region = chunks / threads_;
    const int64_t claim = NextOf(state);
    const int64_t chunk = (claim % threads_) * per_region + claim / threads_;
    const int64_t begin = n_ * chunk / chunks;
    const int64_t end = n_ * (chunk + 1) / chunks;
    if (begin < end) (*fn_)(begin, end);
    chunks_done_.fetch_add(1, std::memory_order_acq_rel);
    state = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::WorkerLoop() {
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
    args.seen = GenerationOf(state_.load(std::memory_order_acquire));
    RunChunks(args.seen);
  }
}

void ThreadPool::ParallelFor(int64_t n, absl::FunctionRef<void(int64_t, int64_t)> fn,
                             int64_t cost_per_item) {
  constexpr int64_t kMinParallelCost = 1 << 15;
  if (threads_ == 1 || n <= 1 || n * cost_per_item < kMinParallelCost) {
    if (n > 0) fn(0, n);
    return;
  }
  fn_ = &fn;
  n_ = n;
  const int64_t by_cost = n * cost_per_item / kChunkCost;
  // A multiple of the thread count (RunChunks maps claims onto regions).
  int64_t chunks = std::min<int64_t>(
      {n, std::max<int64_t>(threads_ * kChunksPerThread, by_cost), kMaxChunks});
  chunks = std::max<int64_t>(threads_, chunks / threads_ * threads_);
  chunks_done_.store(0, std::memory_order_relaxed);
  const uint32_t generation = GenerationOf(state_.load(std::memory_order_relaxed)) + 1;
  {
    // Under the mutex so that sleeping workers re-check their condition.
    absl::MutexLock lock(&mu_);
    state_.store(static_cast<uint64_t>(generation) << 32 | static_cast<uint64_t>(chunks) << 16,
                 std::memory_order_release);
  }
  RunChunks(generation);
  // Every chunk is claimed; wait for the ones other threads are running.
  int spins = 0;
  while (chunks_done_.load(std::memory_order_acquire) != chunks) {
    if (++spins < kSpinLimit) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace shardlm
