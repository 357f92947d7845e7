#include "backends/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace shardlm {
namespace {

TEST(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 7}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 5, 100, 1001}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << threads << " " << n;
    }
  }
}

TEST(ThreadPoolTest, ReusesThreadsAcrossManyCalls) {
  ThreadPool pool(4);
  std::atomic<int64_t> sum{0};
  for (int round = 0; round < 2000; ++round) {
    pool.ParallelFor(64, [&](int64_t b, int64_t e) { sum += e - b; });
  }
  EXPECT_EQ(sum.load(), 2000 * 64);
}

TEST(ThreadPoolTest, ChunksTileTheRangeTheSameWayEveryTime) {
  ThreadPool pool(3);
  std::vector<std::pair<int64_t, int64_t>> first;
  for (int round = 0; round < 20; ++round) {
    absl::Mutex mu;
    std::vector<std::pair<int64_t, int64_t>> chunks;
    pool.ParallelFor(1000, [&](int64_t b, int64_t e) {
      absl::MutexLock lock(&mu);
      chunks.emplace_back(b, e);
    });
    std::sort(chunks.begin(), chunks.end());
    ASSERT_FALSE(chunks.empty());
    EXPECT_EQ(chunks.front().first, 0);
    EXPECT_EQ(chunks.back().second, 1000);
    for (size_t i = 1; i < chunks.size(); ++i) EXPECT_EQ(chunks[i].first, chunks[i - 1].second);
    if (round == 0) first = chunks;
    EXPECT_EQ(chunks, first);
  }
}

TEST(ThreadPoolTest, FinishesWhenWorkersAreBusyElsewhere) {
  // More participants than cores: the caller must not wait for workers the OS
  // has not scheduled yet; it claims their chunks itself.
  ThreadPool pool(8);
  std::atomic<int64_t> sum{0};
  for (int round = 0; round < 500; ++round) {
    pool.ParallelFor(4096, [&](int64_t b, int64_t e) { sum += e - b; });
  }
  EXPECT_EQ(sum.load(), 500 * 4096);
}

TEST(ThreadPoolTest, JobsWithGrowingChunkCountsNeverMix) {
  // A worker still looking at a finished small job must not claim chunks of
  // the larger job that follows (regression: the chunk count used to live
  // outside the atomic claim word).
  ThreadPool pool(3);
  for (int round = 0; round < 3000; ++round) {
    for (int64_t n : {int64_t{2}, int64_t{997}}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << round << " " << n;
    }
  }
}

TEST(ThreadPoolTest, OthersFinishTheRegionOfAStalledParticipant) {
  // The worker stalls in the first chunk it runs until the caller has run
  // every other chunk: the caller must take the rest of the worker's region
  // (its own region alone is half the chunks). Bounded: a stalled worker gives
  // up after 10 s, and the counts then show what the caller could not take.
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> by_caller{0}, by_worker{0};
    constexpr int64_t kChunks = 8;
    pool.ParallelFor(kChunks, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() == caller) {
        by_caller += static_cast<int>(e - b);
        return;
      }
      if (by_worker.fetch_add(static_cast<int>(e - b)) == 0) {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (by_caller.load() < kChunks - (e - b) && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::yield();
        }
      }
    }, /*cost_per_item=*/int64_t{1} << 30);
    ASSERT_EQ(by_caller.load() + by_worker.load(), kChunks);
    // The worker ran its stalled chunk at most; the caller ran all the others.
    ASSERT_LE(by_worker.load(), 1) << round;
  }
}

TEST(ThreadPoolTest, SmallJobsRunInline) {
  ThreadPool pool(4);
  int calls = 0;  // not atomic: must be one call on this thread
  pool.ParallelFor(8, [&](int64_t b, int64_t e) { ++calls; }, /*cost_per_item=*/1);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace shardlm
