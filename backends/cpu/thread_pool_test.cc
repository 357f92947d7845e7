#include "backends/cpu/thread_pool.h"

#include <atomic>
#include <vector>

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

TEST(ThreadPoolTest, SplitIsContiguousAndDeterministic) {
  ThreadPool pool(3);
  std::vector<std::pair<int64_t, int64_t>> chunks(3, {-1, -1});
  pool.ParallelFor(10, [&](int64_t b, int64_t e) { chunks[b == 0 ? 0 : b == 3 ? 1 : 2] = {b, e}; });
  EXPECT_EQ(chunks[0], std::make_pair(int64_t{0}, int64_t{3}));
  EXPECT_EQ(chunks[1], std::make_pair(int64_t{3}, int64_t{6}));
  EXPECT_EQ(chunks[2], std::make_pair(int64_t{6}, int64_t{10}));
}

TEST(ThreadPoolTest, SmallJobsRunInline) {
  ThreadPool pool(4);
  int calls = 0;  // not atomic: must be one call on this thread
  pool.ParallelFor(8, [&](int64_t b, int64_t e) { ++calls; }, /*cost_per_item=*/1);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace shardlm
