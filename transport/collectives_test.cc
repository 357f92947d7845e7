#include "transport/collectives.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/local/local_transport.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kTag = 1;

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Rank r's element i: signed, |v| < 2^55, so sums over 8 ranks cannot overflow.
int64_t IntValue(int r, int64_t i) {
  return static_cast<int64_t>(Mix(static_cast<uint64_t>(r) * 1000003u + i)) >> 8;
}

// Rank r's element i in [0.5, 1.5): no cancellation, so relative error is tight.
float FloatValue(int r, int64_t i) {
  return 0.5f + static_cast<float>(Mix(static_cast<uint64_t>(r) * 7919u + i + 17) >> 40) /
                    static_cast<float>(1 << 24);
}

struct RankResult {
  absl::Status status;
  absl::Duration elapsed;
};

// Runs `body` on one thread per rank of `hub`, except the ranks in `absent`
// (nodes that never call). `meanwhile` runs on the test thread once the
// threads are started (to kill a rank mid-collective).
std::vector<RankResult> RunRanks(const std::shared_ptr<LocalHub>& hub,
                                 const std::function<absl::Status(Transport&)>& body,
                                 const std::set<int>& absent = {},
                                 const std::function<void()>& meanwhile = nullptr) {
  std::vector<RankResult> results(hub->world_size());
  std::vector<std::thread> threads;
  for (int r = 0; r < hub->world_size(); ++r) {
    if (absent.count(r)) continue;
    threads.emplace_back([&, r] {
      std::unique_ptr<Transport> transport = hub->Endpoint(r);
      const absl::Time start = absl::Now();
      results[r].status = body(*transport);
      results[r].elapsed = absl::Now() - start;
    });
  }
  if (meanwhile) meanwhile();
  for (auto& t : threads) t.join();
  return results;
}

// Bytes a ring all-reduce makes `rank` send (received: chunk index - 1).
int64_t RingBytes(int64_t length, int n, int rank, int64_t elem_size, bool received) {
  if (n == 1) return 0;
  int64_t elems = 0;
  const int shift = received ? n - 1 : 0;
  for (int s = 0; s < n - 1; ++s) {
    elems += RingChunk(length, n, (rank - s + shift + n) % n).size;      // reduce-scatter
    elems += RingChunk(length, n, (rank + 1 - s + shift + n) % n).size;  // all-gather
  }
  return elems * elem_size;
}

int64_t ExpectedBytes(AllReduceAlgorithm algo, int64_t length, int n, int rank,
                      int64_t elem_size, bool received) {
  if (ResolveAllReduceAlgorithm(algo, n, length * elem_size) == AllReduceAlgorithm::kRing) {
    return RingBytes(length, n, rank, elem_size, received);
  }
  return (n - 1) * length * elem_size;
}

const AllReduceAlgorithm kAlgorithms[] = {AllReduceAlgorithm::kRing, AllReduceAlgorithm::kDirect,
                                          AllReduceAlgorithm::kAuto};

class CollectivesTest : public ::testing::TestWithParam<int> {
 protected:
  int n() const { return GetParam(); }
  std::vector<int64_t> Lengths() const { return {0, 1, n() - 1, n(), 7, 1000, 4099}; }
};

TEST(RingChunkTest, CoversTheVectorInOrder) {
  for (int n = 1; n <= 8; ++n) {
    for (int64_t length : {0, 1, 3, 7, 8, 1000, 4099}) {
      int64_t next = 0;
      for (int c = 0; c < n; ++c) {
        ChunkRange range = RingChunk(length, n, c);
        EXPECT_EQ(range.offset, next);
        EXPECT_TRUE(range.size == length / n || range.size == length / n + 1);
        next += range.size;
      }
      EXPECT_EQ(next, length);
    }
  }
}

TEST(ResolveTest, AutoPicksDirectForFewRanksOrSmallVectors) {
  EXPECT_EQ(ResolveAllReduceAlgorithm(AllReduceAlgorithm::kAuto, 3, 1 << 20),
            AllReduceAlgorithm::kDirect);
  EXPECT_EQ(ResolveAllReduceAlgorithm(AllReduceAlgorithm::kAuto, 8, kAutoDirectMaxBytes - 1),
            AllReduceAlgorithm::kDirect);
  EXPECT_EQ(ResolveAllReduceAlgorithm(AllReduceAlgorithm::kAuto, 4, kAutoDirectMaxBytes),
            AllReduceAlgorithm::kRing);
  EXPECT_EQ(ResolveAllReduceAlgorithm(AllReduceAlgorithm::kDirect, 8, 1 << 20),
            AllReduceAlgorithm::kDirect);
  EXPECT_STREQ(AllReduceAlgorithmName(AllReduceAlgorithm::kRing), "ring");
}

TEST_P(CollectivesTest, Int64AllReduceIsExactOnEveryRank) {
  for (int64_t length : Lengths()) {
    std::vector<int64_t> expected(length, 0);
    for (int r = 0; r < n(); ++r) {
      for (int64_t i = 0; i < length; ++i) expected[i] += IntValue(r, i);
    }
    for (AllReduceAlgorithm algo : kAlgorithms) {
      SCOPED_TRACE(absl::StrCat("n=", n(), " length=", length, " ", AllReduceAlgorithmName(algo)));
      auto hub = LocalHub::Create(n());
      std::vector<std::vector<int64_t>> out(n());
      std::vector<CollectiveStats> stats(n());
      auto results = RunRanks(hub, [&](Transport& t) {
        std::vector<int64_t>& data = out[t.rank()];
        for (int64_t i = 0; i < length; ++i) data.push_back(IntValue(t.rank(), i));
        return AllReduceSum(t, absl::MakeSpan(data), algo, kTag, Soon(), &stats[t.rank()]);
      });
      for (int r = 0; r < n(); ++r) {
        ASSERT_TRUE(results[r].status.ok()) << results[r].status;
        EXPECT_EQ(out[r], expected) << "rank " << r;
        EXPECT_EQ(stats[r].bytes_sent, ExpectedBytes(algo, length, n(), r, 8, false));
        EXPECT_EQ(stats[r].bytes_received, ExpectedBytes(algo, length, n(), r, 8, true));
        const CollectiveStats predicted =
            AllReduceTraffic(WireFormat::kExact, algo, length, n(), r);
        EXPECT_EQ(predicted.bytes_sent, stats[r].bytes_sent);
        EXPECT_EQ(predicted.bytes_received, stats[r].bytes_received);
        EXPECT_EQ(predicted.messages_sent, stats[r].messages_sent);
      }
      EXPECT_EQ(hub->PendingMessages(), 0);
    }
  }
}

// The float sum in the order collectives.h documents for `algo`.
std::vector<float> DocumentedFloatSum(AllReduceAlgorithm algo, int n, int64_t length) {
  std::vector<float> sum(length);
  const bool ring = ResolveAllReduceAlgorithm(algo, n, length * 4) == AllReduceAlgorithm::kRing;
  for (int c = 0; c < n; ++c) {
    const ChunkRange range = RingChunk(length, n, c);
    for (int64_t i = range.offset; i < range.offset + range.size; ++i) {
      const int first = ring && n > 1 ? c : 0;
      float acc = FloatValue(first, i);
      for (int k = 1; k < n; ++k) acc = acc + FloatValue((first + k) % n, i);
      sum[i] = acc;
    }
  }
  return sum;
}

TEST_P(CollectivesTest, FloatAllReduceGivesIdenticalBytesInTheDocumentedOrder) {
  for (int64_t length : Lengths()) {
    const std::vector<float> ring_order =
        DocumentedFloatSum(AllReduceAlgorithm::kRing, n(), length);
    for (AllReduceAlgorithm algo : kAlgorithms) {
      SCOPED_TRACE(absl::StrCat("n=", n(), " length=", length, " ", AllReduceAlgorithmName(algo)));
      auto hub = LocalHub::Create(n());
      std::vector<std::vector<float>> out(n());
      std::vector<CollectiveStats> stats(n());
      auto results = RunRanks(hub, [&](Transport& t) {
        std::vector<float>& data = out[t.rank()];
        for (int64_t i = 0; i < length; ++i) data.push_back(FloatValue(t.rank(), i));
        return AllReduceSum(t, absl::MakeSpan(data), algo, kTag, Soon(), &stats[t.rank()]);
      });
      const std::vector<float> expected = DocumentedFloatSum(algo, n(), length);
      for (int r = 0; r < n(); ++r) {
        ASSERT_TRUE(results[r].status.ok()) << results[r].status;
        ASSERT_EQ(out[r].size(), static_cast<size_t>(length));
        EXPECT_EQ(stats[r].bytes_sent, ExpectedBytes(algo, length, n(), r, 4, false));
        if (length == 0) continue;  // memcmp must not see the null data of empty vectors
        EXPECT_EQ(std::memcmp(out[r].data(), out[0].data(), length * sizeof(float)), 0)
            << "rank " << r << " differs from rank 0";
        EXPECT_EQ(std::memcmp(out[r].data(), expected.data(), length * sizeof(float)), 0);
      }
      for (int64_t i = 0; i < length; ++i) {
        double exact = 0;
        for (int r = 0; r < n(); ++r) exact += FloatValue(r, i);
        ASSERT_NEAR(out[0][i], exact, 1e-5 * exact) << "element " << i;
        ASSERT_NEAR(ring_order[i], exact, 1e-5 * exact) << "element " << i;
      }
    }
  }
}

TEST_P(CollectivesTest, BroadcastFromEveryRoot) {
  for (int root = 0; root < n(); ++root) {
    const std::vector<uint8_t> payload(3 * root + 5, static_cast<uint8_t>(0xa0 + root));
    auto hub = LocalHub::Create(n());
    std::vector<std::vector<uint8_t>> out(n());
    auto results = RunRanks(hub, [&](Transport& t) {
      std::vector<uint8_t>& data = out[t.rank()];
      data = t.rank() == root ? payload : std::vector<uint8_t>{1, 2};
      return Broadcast(t, root, &data, kTag, Soon());
    });
    for (int r = 0; r < n(); ++r) {
      ASSERT_TRUE(results[r].status.ok()) << results[r].status;
      EXPECT_EQ(out[r], payload) << "root " << root << " rank " << r;
    }
  }
  auto hub = LocalHub::Create(1);
  std::vector<uint8_t> data;
  EXPECT_EQ(Broadcast(*hub->Endpoint(0), 1, &data, kTag, Soon()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(CollectivesTest, AllGatherIsInRankOrder) {
  auto hub = LocalHub::Create(n());
  std::vector<std::vector<std::vector<uint8_t>>> out(n());
  auto results = RunRanks(hub, [&](Transport& t) {
    const std::vector<uint8_t> mine(t.rank() + 1, static_cast<uint8_t>(t.rank()));
    return AllGather(t, mine, &out[t.rank()], kTag, Soon());
  });
  for (int r = 0; r < n(); ++r) {
    ASSERT_TRUE(results[r].status.ok()) << results[r].status;
    ASSERT_EQ(out[r].size(), static_cast<size_t>(n()));
    for (int p = 0; p < n(); ++p) {
      EXPECT_EQ(out[r][p], std::vector<uint8_t>(p + 1, static_cast<uint8_t>(p)));
    }
  }
}

TEST_P(CollectivesTest, BarrierWaitsForEveryRank) {
  auto hub = LocalHub::Create(n());
  std::atomic<int> entered{0};
  std::vector<int> seen(n());
  auto results = RunRanks(hub, [&](Transport& t) {
    if (t.rank() == n() - 1) absl::SleepFor(absl::Milliseconds(30));  // the straggler
    entered.fetch_add(1);
    absl::Status status = Barrier(t, kTag, Soon());
    seen[t.rank()] = entered.load();
    return status;
  });
  for (int r = 0; r < n(); ++r) {
    ASSERT_TRUE(results[r].status.ok()) << results[r].status;
    EXPECT_EQ(seen[r], n()) << "rank " << r << " left the barrier early";
  }
}

// Consecutive collectives of every kind may share one tag.
TEST_P(CollectivesTest, CollectivesReuseOneTag) {
  auto hub = LocalHub::Create(n());
  auto results = RunRanks(hub, [&](Transport& t) -> absl::Status {
    for (int round = 0; round < 10; ++round) {
      for (AllReduceAlgorithm algo : kAlgorithms) {
        std::vector<int64_t> v(13, t.rank() + round);
        absl::Status s = AllReduceSum(t, absl::MakeSpan(v), algo, kTag, Soon());
        if (!s.ok()) return s;
        const int64_t want = n() * (n() - 1) / 2 + n() * round;
        if (v != std::vector<int64_t>(13, want)) return absl::InternalError("wrong sum");
      }
      std::vector<uint8_t> b(1, static_cast<uint8_t>(round));
      if (absl::Status s = Broadcast(t, round % n(), &b, kTag, Soon()); !s.ok()) return s;
      std::vector<std::vector<uint8_t>> all;
      if (absl::Status s = AllGather(t, b, &all, kTag, Soon()); !s.ok()) return s;
      if (absl::Status s = Barrier(t, kTag, Soon()); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  for (int r = 0; r < n(); ++r) EXPECT_TRUE(results[r].status.ok()) << results[r].status;
  EXPECT_EQ(hub->PendingMessages(), 0);
}

INSTANTIATE_TEST_SUITE_P(Ranks, CollectivesTest, ::testing::Range(1, 9));

// Every collective a surviving rank can be in when another rank fails.
const std::vector<std::pair<std::string, std::function<absl::Status(Transport&, absl::Time)>>>&
Collectives() {
  static const auto* kCollectives = new std::vector<
      std::pair<std::string, std::function<absl::Status(Transport&, absl::Time)>>>{
      {"ring", [](Transport& t, absl::Time d) {
         std::vector<int64_t> v(1000, 1);
         return AllReduceSum(t, absl::MakeSpan(v), AllReduceAlgorithm::kRing, kTag, d);
       }},
      {"direct", [](Transport& t, absl::Time d) {
         std::vector<float> v(1000, 1.0f);
         return AllReduceSum(t, absl::MakeSpan(v), AllReduceAlgorithm::kDirect, kTag, d);
       }},
      {"ring q8_0", [](Transport& t, absl::Time d) {
         std::vector<float> v(1000, 1.0f);
         return AllReduceSum(t, absl::MakeSpan(v), WireFormat::kQ8_0, AllReduceAlgorithm::kRing,
                             kTag, d);
       }},
      {"auto", [](Transport& t, absl::Time d) {
         std::vector<int64_t> v(4099, 1);
         return AllReduceSum(t, absl::MakeSpan(v), AllReduceAlgorithm::kAuto, kTag, d);
       }},
      {"broadcast", [](Transport& t, absl::Time d) {
         std::vector<uint8_t> v(10, 1);
         return Broadcast(t, 2, &v, kTag, d);  // rank 2 is the one that fails
       }},
      {"all-gather", [](Transport& t, absl::Time d) {
         std::vector<std::vector<uint8_t>> all;
         return AllGather(t, std::vector<uint8_t>(5, 1), &all, kTag, d);
       }},
      {"barrier", [](Transport& t, absl::Time d) { return Barrier(t, kTag, d); }},
  };
  return *kCollectives;
}

// Rank 2 crashes (before the collective, or while the others wait in it):
// every other rank fails with Unavailable well before the 2 s deadline.
TEST(CollectivesFailureTest, KilledRankFailsTheOthersPromptly) {
  for (int n : {3, 4, 5, 8}) {
    for (bool kill_first : {true, false}) {
      for (const auto& [name, collective] : Collectives()) {
        SCOPED_TRACE(absl::StrCat(name, " n=", n, kill_first ? " killed before" : " killed during"));
        auto hub = LocalHub::Create(n);
        if (kill_first) hub->Kill(2);
        const absl::Time deadline = absl::Now() + absl::Seconds(2);
        auto results = RunRanks(
            hub, [&](Transport& t) { return collective(t, deadline); }, {2},
            [&] {
              absl::SleepFor(absl::Milliseconds(20));
              hub->Kill(2);
            });
        for (int r = 0; r < n; ++r) {
          if (r == 2) continue;
          EXPECT_EQ(results[r].status.code(), absl::StatusCode::kUnavailable)
              << "rank " << r << ": " << results[r].status;
          EXPECT_LT(results[r].elapsed, absl::Seconds(1)) << "rank " << r;
        }
      }
    }
  }
}

TEST(CollectivesFailureTest, ErrorsNameTheStepAndThePeer) {
  auto hub = LocalHub::Create(4);
  hub->Kill(2);
  auto results = RunRanks(
      hub,
      [&](Transport& t) {
        std::vector<int64_t> v(100, 1);
        return AllReduceSum(t, absl::MakeSpan(v), AllReduceAlgorithm::kRing, kTag, Soon());
      },
      {2});
  EXPECT_THAT(std::string(results[3].status.message()),
              HasSubstr("all-reduce ring reduce-scatter step 0: recv from rank 2: "));
  EXPECT_THAT(std::string(results[1].status.message()),
              HasSubstr("all-reduce ring reduce-scatter step 0: send to rank 2: "));
  // Rank 0 hears of the crash from rank 3, which passes it on.
  EXPECT_THAT(std::string(results[0].status.message()), HasSubstr("rank 3 gave up: "));
  EXPECT_THAT(std::string(results[0].status.message()), HasSubstr("rank 2 is dead"));
}

// A rank that never calls: the others fail with DeadlineExceeded at the
// deadline, not before and not much after.
TEST(CollectivesFailureTest, AbsentRankFailsTheOthersAtTheDeadline) {
  for (const auto& [name, collective] : Collectives()) {
    SCOPED_TRACE(name);
    auto hub = LocalHub::Create(4);
    const absl::Time deadline = absl::Now() + absl::Milliseconds(300);
    auto results = RunRanks(hub, [&](Transport& t) { return collective(t, deadline); }, {2});
    for (int r = 0; r < 4; ++r) {
      if (r == 2) continue;
      EXPECT_EQ(results[r].status.code(), absl::StatusCode::kDeadlineExceeded)
          << "rank " << r << ": " << results[r].status;
      EXPECT_LT(results[r].elapsed, absl::Seconds(2)) << "rank " << r;
    }
    EXPECT_GE(absl::Now(), deadline);
  }
}

TEST(CollectivesFailureTest, MismatchedLengthsFailInsteadOfHanging) {
  for (AllReduceAlgorithm algo : {AllReduceAlgorithm::kRing, AllReduceAlgorithm::kDirect}) {
    auto hub = LocalHub::Create(4);
    auto results = RunRanks(hub, [&](Transport& t) {
      std::vector<int64_t> v(t.rank() == 1 ? 9 : 8, 1);
      return AllReduceSum(t, absl::MakeSpan(v), algo, kTag, absl::Now() + absl::Seconds(2));
    });
    int invalid = 0;
    for (int r = 0; r < 4; ++r) {
      EXPECT_LT(results[r].elapsed, absl::Seconds(1)) << AllReduceAlgorithmName(algo);
      if (results[r].status.code() == absl::StatusCode::kInvalidArgument) ++invalid;
    }
    EXPECT_GE(invalid, 1) << AllReduceAlgorithmName(algo);
  }
}

// The figures behind the report: bytes each rank sends for a 4096-element
// int64 all-reduce (32 KiB), ring vs direct.
TEST(CollectivesBytesTest, RingSendsTwoTimesNMinusOneOverNOfTheVector) {
  constexpr int64_t kLength = 4096;
  constexpr int64_t kBytes = kLength * 8;
  for (int n : {2, 4, 8}) {
    for (AllReduceAlgorithm algo : {AllReduceAlgorithm::kRing, AllReduceAlgorithm::kDirect}) {
      auto hub = LocalHub::Create(n);
      std::vector<CollectiveStats> stats(n);
      auto results = RunRanks(hub, [&](Transport& t) {
        std::vector<int64_t> v(kLength, t.rank());
        return AllReduceSum(t, absl::MakeSpan(v), algo, kTag, Soon(), &stats[t.rank()]);
      });
      const int64_t want = algo == AllReduceAlgorithm::kRing ? 2 * (n - 1) * kBytes / n
                                                             : (n - 1) * kBytes;
      for (int r = 0; r < n; ++r) {
        ASSERT_TRUE(results[r].status.ok()) << results[r].status;
        EXPECT_EQ(stats[r].bytes_sent, want);
        EXPECT_EQ(stats[r].bytes_received, want);
        EXPECT_EQ(stats[r].messages_sent, algo == AllReduceAlgorithm::kRing ? 2 * (n - 1) : n - 1);
      }
      std::cout << "all-reduce " << AllReduceAlgorithmName(algo) << " N=" << n << " "
                << kLength << " x int64: " << stats[0].bytes_sent << " bytes sent per rank ("
                << stats[0].messages_sent << " messages)\n";
    }
  }
}

// --- Wire formats ---------------------------------------------------------

const WireFormat kFloatWires[] = {WireFormat::kF32, WireFormat::kF16, WireFormat::kQ8_0};

TEST(WireFormatTest, NamesBytesAndChunks) {
  for (WireFormat wire : {WireFormat::kExact, WireFormat::kF32, WireFormat::kF16,
                          WireFormat::kQ8_0}) {
    EXPECT_EQ(ParseWireFormat(WireFormatName(wire)).value(), wire);
  }
  EXPECT_EQ(ParseWireFormat("q4_0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WireBytes(WireFormat::kExact, 10), 80);
  EXPECT_EQ(WireBytes(WireFormat::kF32, 10), 40);
  EXPECT_EQ(WireBytes(WireFormat::kF16, 10), 20);
  EXPECT_EQ(WireBytes(WireFormat::kQ8_0, 0), 0);
  EXPECT_EQ(WireBytes(WireFormat::kQ8_0, 1), 34);
  EXPECT_EQ(WireBytes(WireFormat::kQ8_0, 64), 68);
  EXPECT_EQ(WireBytes(WireFormat::kQ8_0, 65), 102);
  for (int n = 1; n <= 8; ++n) {
    for (int64_t length : {0, 1, 31, 33, 100, 2048, 4099}) {
      int64_t next = 0;
      for (int c = 0; c < n; ++c) {
        const ChunkRange range = WireChunk(WireFormat::kQ8_0, length, n, c);
        EXPECT_EQ(range.offset, next) << n << " " << length << " " << c;
        EXPECT_TRUE(range.offset % 32 == 0 || range.size == 0);
        next += range.size;
      }
      EXPECT_EQ(next, length);
    }
  }
}

TEST(WireFormatTest, EncodeDecodeRoundTrip) {
  std::vector<float> v(70);
  for (size_t i = 0; i < v.size(); ++i) v[i] = FloatValue(1, i) - 1.0f;
  v[5] = 0.0f;
  ASSERT_FALSE(EncodeWire(WireFormat::kExact, v).ok());
  for (WireFormat wire : kFloatWires) {
    const std::vector<uint8_t> bytes = EncodeWire(wire, v).value();
    ASSERT_EQ(static_cast<int64_t>(bytes.size()), WireBytes(wire, v.size()));
    std::vector<float> back(v.size());
    ASSERT_TRUE(DecodeWire(wire, bytes, absl::MakeSpan(back)).ok());
    const double tol = wire == WireFormat::kF32 ? 0 : wire == WireFormat::kF16 ? 4e-4 : 4e-3;
    for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(back[i], v[i], tol) << i;
    EXPECT_EQ(back[5], 0.0f);
    std::vector<float> wrong(v.size() + 40);
    EXPECT_EQ(DecodeWire(wire, bytes, absl::MakeSpan(wrong)).code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(WireFormatTest, FloatAllReduceRejectsTheExactWire) {
  auto hub = LocalHub::Create(2);
  auto results = RunRanks(hub, [&](Transport& t) {
    std::vector<float> v(8, 1.0f);
    return AllReduceSum(t, absl::MakeSpan(v), WireFormat::kExact, AllReduceAlgorithm::kRing,
                        kTag, Soon());
  });
  for (const RankResult& r : results) {
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  }
}

// Bytes one rank sends (or receives) in an all-reduce in `wire`.
int64_t WireTraffic(WireFormat wire, AllReduceAlgorithm algo, int64_t length, int n, int rank,
                    bool received) {
  if (algo == AllReduceAlgorithm::kDirect) return (n - 1) * WireBytes(wire, length);
  const int shift = received ? n - 1 : 0;
  int64_t bytes = 0;
  for (int s = 0; s < n - 1; ++s) {
    bytes += WireBytes(wire, WireChunk(wire, length, n, (rank - s + shift + n) % n).size);
    bytes += WireBytes(wire, WireChunk(wire, length, n, (rank + 1 - s + shift + n) % n).size);
  }
  return bytes;
}

// The documented direct result: the decoded vectors summed in rank order.
std::vector<float> DirectDecodedSum(WireFormat wire, int n, int64_t length) {
  std::vector<float> sum(length), decoded(length), x(length);
  for (int r = 0; r < n; ++r) {
    for (int64_t i = 0; i < length; ++i) x[i] = 2.0f * FloatValue(r, i) - 2.0f;
    const std::vector<uint8_t> bytes = EncodeWire(wire, x).value();
    EXPECT_TRUE(DecodeWire(wire, bytes, absl::MakeSpan(decoded)).ok());
    for (int64_t i = 0; i < length; ++i) sum[i] = r == 0 ? decoded[i] : sum[i] + decoded[i];
  }
  return sum;
}

class WireAllReduceTest
    : public ::testing::TestWithParam<std::tuple<WireFormat, AllReduceAlgorithm, int>> {};

TEST_P(WireAllReduceTest, IdenticalBytesCloseToTheSumAndCountedBytes) {
  const auto [wire, algo, n] = GetParam();
  // An encode errs by at most about `rel` x the magnitude it encodes: f16
  // half an ulp (2^-11), q8_0 half a step of amax/127 (plus the f16 scale).
  // The ring encodes partial sums of 1, 2, .., n terms of |x| < 1, so the
  // error bound is rel x n (n + 1) / 2.
  const double rel = wire == WireFormat::kF32 ? 1e-6 : wire == WireFormat::kF16 ? 1e-3 : 1 / 200.0;
  for (int64_t length : {1, 31, 100, 1000, 4099}) {
    SCOPED_TRACE(absl::StrCat(WireFormatName(wire), " ", AllReduceAlgorithmName(algo), " n=", n,
                              " length=", length));
    auto hub = LocalHub::Create(n);
    std::vector<std::vector<float>> out(n);
    std::vector<CollectiveStats> stats(n);
    auto results = RunRanks(hub, [&](Transport& t) {
      std::vector<float>& data = out[t.rank()];
      for (int64_t i = 0; i < length; ++i) data.push_back(2.0f * FloatValue(t.rank(), i) - 2.0f);
      return AllReduceSum(t, absl::MakeSpan(data), wire, algo, kTag, Soon(), &stats[t.rank()]);
    });
    for (int r = 0; r < n; ++r) {
      ASSERT_TRUE(results[r].status.ok()) << results[r].status;
      EXPECT_EQ(std::memcmp(out[r].data(), out[0].data(), length * sizeof(float)), 0)
          << "rank " << r << " differs from rank 0";
      EXPECT_EQ(stats[r].bytes_sent, WireTraffic(wire, algo, length, n, r, false)) << r;
      EXPECT_EQ(stats[r].bytes_received, WireTraffic(wire, algo, length, n, r, true)) << r;
      const int64_t messages = algo == AllReduceAlgorithm::kRing ? 2 * (n - 1) : n - 1;
      EXPECT_EQ(stats[r].messages_sent, messages);
      EXPECT_EQ(stats[r].messages_received, messages);
      const CollectiveStats predicted = AllReduceTraffic(wire, algo, length, n, r);
      EXPECT_EQ(predicted.bytes_sent, stats[r].bytes_sent);
      EXPECT_EQ(predicted.bytes_received, stats[r].bytes_received);
      EXPECT_EQ(predicted.messages_sent, messages);
      EXPECT_EQ(predicted.messages_received, messages);
    }
    if (algo == AllReduceAlgorithm::kDirect) {
      const std::vector<float> want = DirectDecodedSum(wire, n, length);
      EXPECT_EQ(std::memcmp(out[0].data(), want.data(), length * sizeof(float)), 0);
    }
    double worst = 0;
    for (int64_t i = 0; i < length; ++i) {
      double exact = 0;
      for (int r = 0; r < n; ++r) exact += 2.0f * FloatValue(r, i) - 2.0f;
      worst = std::max(worst, std::fabs(out[0][i] - exact));
    }
    EXPECT_LE(worst, rel * n * (n + 1) / 2 + 1e-6);
    if (length == 4099) std::cout << "  worst |error| " << worst << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Wires, WireAllReduceTest,
    ::testing::Combine(::testing::ValuesIn(kFloatWires),
                       ::testing::Values(AllReduceAlgorithm::kRing, AllReduceAlgorithm::kDirect),
                       ::testing::Values(2, 3, 4, 5)),
    [](const auto& info) {
      return absl::StrCat(WireFormatName(std::get<0>(info.param)), "_",
                          AllReduceAlgorithmName(std::get<1>(info.param)), "_",
                          std::get<2>(info.param));
    });

}  // namespace
}  // namespace shardlm
