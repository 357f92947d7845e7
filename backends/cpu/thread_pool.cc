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

// Chunk indices live in 16-bit fields of the region words.
constexpr int64_t kMaxChunks = 0xffff;

inline uint32_t GenerationOf(uint64_t word) { return static_cast<uint32_t>(word >> 32); }
inline int64_t ChunksOf(uint64_t state) { return static_cast<int64_t>(state & 0xffffffff); }
inline int64_t BeginOf(uint64_t word) { return static_cast<int64_t>((word >> 16) & 0xffff); }
inline int64_t EndOf(uint64_t word) { return static_cast<int64_t>(word & 0xffff); }
inline uint64_t RegionWord(uint32_t generation, int64_t begin, int64_t end) {
  return static_cast<uint64_t>(generation) << 32 | static_cast<uint64_t>(begin) << 16 |
         static_cast<uint64_t>(end);
}

}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(std::max(1, threads)), regions_(threads_) {
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
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

int64_t ThreadPool::Claim(uint32_t generation, int r, bool own) {
  std::atomic<uint64_t>& word = regions_[r].word;
  uint64_t w = word.load(std::memory_order_acquire);
  while (GenerationOf(w) == generation && BeginOf(w) < EndOf(w)) {
    const int64_t begin = BeginOf(w), end = EndOf(w);
    const uint64_t next =
        own ? RegionWord(generation, begin + 1, end) : RegionWord(generation, begin, end - 1);
    if (word.compare_exchange_weak(w, next, std::memory_order_acq_rel,
                                   std::memory_order_acquire)) {
      return own ? begin : end - 1;
    }
  }
  return -1;
}

void ThreadPool::RunChunks(uint32_t generation, int self) {
  const int64_t chunks = ChunksOf(state_.load(std::memory_order_acquire));
  for (int k = 0; k < threads_; ++k) {
    const int r = (self + k) % threads_;
    for (int64_t chunk; (chunk = Claim(generation, r, /*own=*/k == 0)) >= 0;) {
      (*fn_)(n_ * chunk / chunks, n_ * (chunk + 1) / chunks);
      chunks_done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

void ThreadPool::WorkerLoop(int self) {
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
    RunChunks(args.seen, self);
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
  const int64_t chunks =
      std::min<int64_t>({n, std::max<int64_t>(threads_ * kChunksPerThread, by_cost), kMaxChunks});
  chunks_done_.store(0, std::memory_order_relaxed);
  const uint32_t generation = GenerationOf(state_.load(std::memory_order_relaxed)) + 1;
  // Participant t's region: chunks [chunks * t / T, chunks * (t + 1) / T).
  for (int t = 0; t < threads_; ++t) {
    regions_[t].word.store(
        RegionWord(generation, chunks * t / threads_, chunks * (t + 1) / threads_),
        std::memory_order_relaxed);
  }
  {
    // Under the mutex so that sleeping workers re-check their condition.
    absl::MutexLock lock(&mu_);
    state_.store(static_cast<uint64_t>(generation) << 32 | static_cast<uint64_t>(chunks),
                 std::memory_order_release);
  }
  RunChunks(generation, /*self=*/0);
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
