#include "transport/local/local_transport.h"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/clock.h"
#include "core/transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/transport_registry.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> Bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

std::string RecvString(Transport& t, int peer, uint32_t tag) {
  absl::StatusOr<std::vector<uint8_t>> m = t.Recv(peer, tag, Soon());
  if (!m.ok()) return "error: " + m.status().ToString();
  return std::string(m->begin(), m->end());
}

TEST(LocalTransportTest, DeadlinesAreReadOnTheHubsClock) {
  // Callers compute deadlines from their injected clock (here a manual clock
  // at 1970): the hub must wait for what remains on that clock, not compare
  // it with wall time (which would expire at once).
  ManualClock clock;
  std::shared_ptr<LocalHub> hub = LocalHub::Create(2, &clock);
  auto a = hub->Endpoint(0);
  auto b = hub->Endpoint(1);
  std::thread sender([&] {
    absl::SleepFor(absl::Milliseconds(50));
    const std::vector<uint8_t> msg = {7};
    EXPECT_TRUE(b->Send(0, 1, msg, clock.Now() + absl::Seconds(5)).ok());
  });
  auto got = a->Recv(1, 1, clock.Now() + absl::Seconds(5));
  sender.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::vector<uint8_t>{7});
  const absl::Time start = absl::Now();
  EXPECT_EQ(a->Recv(1, 1, clock.Now() + absl::Milliseconds(100)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
}

TEST(LocalTransportTest, RankAndWorldSize) {
  auto hub = LocalHub::Create(3);
  auto t = hub->Endpoint(2);
  EXPECT_EQ(t->rank(), 2);
  EXPECT_EQ(t->world_size(), 3);
  EXPECT_EQ(hub->world_size(), 3);
}

TEST(LocalTransportTest, FifoPerSourceAndTag) {
  auto hub = LocalHub::Create(2);
  auto a = hub->Endpoint(0);
  auto b = hub->Endpoint(1);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a->Send(1, 7, Bytes(absl::StrCat("m", i)), Soon()).ok());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(RecvString(*b, 0, 7), absl::StrCat("m", i));
  EXPECT_EQ(hub->PendingMessages(), 0);
}

TEST(LocalTransportTest, TagsAndSourcesAreIndependent) {
  auto hub = LocalHub::Create(3);
  auto r0 = hub->Endpoint(0);
  auto r1 = hub->Endpoint(1);
  auto r2 = hub->Endpoint(2);
  ASSERT_TRUE(r0->Send(1, 1, Bytes("tag1"), Soon()).ok());
  ASSERT_TRUE(r0->Send(1, 2, Bytes("tag2"), Soon()).ok());
  ASSERT_TRUE(r2->Send(1, 1, Bytes("from2"), Soon()).ok());
  EXPECT_EQ(RecvString(*r1, 0, 2), "tag2");
  EXPECT_EQ(RecvString(*r1, 2, 1), "from2");
  EXPECT_EQ(RecvString(*r1, 0, 1), "tag1");
}

TEST(LocalTransportTest, EmptyMessagesAndSelfSend) {
  auto hub = LocalHub::Create(1);
  auto t = hub->Endpoint(0);
  ASSERT_TRUE(t->Send(0, 3, {}, Soon()).ok());
  ASSERT_TRUE(t->Send(0, 3, Bytes("x"), Soon()).ok());
  EXPECT_EQ(RecvString(*t, 0, 3), "");
  EXPECT_EQ(RecvString(*t, 0, 3), "x");
}

TEST(LocalTransportTest, RecvWaitsForALaterSend) {
  auto hub = LocalHub::Create(2);
  auto a = hub->Endpoint(0);
  auto b = hub->Endpoint(1);
  std::thread sender([&] {
    absl::SleepFor(absl::Milliseconds(20));
    ASSERT_TRUE(a->Send(1, 9, Bytes("late"), Soon()).ok());
  });
  EXPECT_EQ(RecvString(*b, 0, 9), "late");
  sender.join();
}

TEST(LocalTransportTest, DeadlineNamesPeerAndTag) {
  auto hub = LocalHub::Create(2);
  auto b = hub->Endpoint(1);
  const absl::Time start = absl::Now();
  auto m = b->Recv(0, 42, start + absl::Milliseconds(50));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  ASSERT_EQ(m.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("rank 0 tag 42"));
  // A message on another tag does not satisfy the wait.
  auto a = hub->Endpoint(0);
  ASSERT_TRUE(a->Send(1, 41, Bytes("other"), Soon()).ok());
  EXPECT_EQ(b->Recv(0, 42, absl::Now() + absl::Milliseconds(10)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(LocalTransportTest, KillWakesWaitingPeersPromptly) {
  auto hub = LocalHub::Create(3);
  auto r1 = hub->Endpoint(1);
  auto r2 = hub->Endpoint(2);
  absl::Status status;
  absl::Duration waited;
  std::thread waiter([&] {
    const absl::Time start = absl::Now();
    status = r1->Recv(0, 5, start + absl::Seconds(10)).status();
    waited = absl::Now() - start;
  });
  absl::SleepFor(absl::Milliseconds(20));
  hub->Kill(0);
  waiter.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), HasSubstr("rank 0 is dead"));
  EXPECT_LT(waited, absl::Seconds(2));
  EXPECT_TRUE(hub->IsDead(0));
  EXPECT_FALSE(hub->IsDead(1));
  // Sending to the dead rank fails; the dead rank's own calls fail.
  EXPECT_EQ(r2->Send(0, 5, Bytes("x"), Soon()).code(), absl::StatusCode::kUnavailable);
  auto r0 = hub->Endpoint(0);
  EXPECT_EQ(r0->Send(1, 5, Bytes("x"), Soon()).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r0->Recv(1, 5, Soon()).status().code(), absl::StatusCode::kUnavailable);
  // Live ranks still talk to each other.
  ASSERT_TRUE(r2->Send(1, 5, Bytes("ok"), Soon()).ok());
  EXPECT_EQ(RecvString(*r1, 2, 5), "ok");
}

TEST(LocalTransportTest, MessagesSentBeforeKillAreDelivered) {
  auto hub = LocalHub::Create(2);
  auto a = hub->Endpoint(0);
  auto b = hub->Endpoint(1);
  ASSERT_TRUE(a->Send(1, 1, Bytes("last words"), Soon()).ok());
  hub->Kill(0);
  EXPECT_EQ(RecvString(*b, 0, 1), "last words");
  EXPECT_EQ(b->Recv(0, 1, Soon()).status().code(), absl::StatusCode::kUnavailable);
}

TEST(LocalTransportTest, ShutdownFailsPendingAndLaterCalls) {
  auto hub = LocalHub::Create(2);
  auto a = hub->Endpoint(0);
  auto b = hub->Endpoint(1);
  absl::Status status;
  std::thread waiter([&] { status = b->Recv(0, 1, absl::Now() + absl::Seconds(10)).status(); });
  absl::SleepFor(absl::Milliseconds(20));
  hub->Shutdown();
  waiter.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  absl::Status sent = a->Send(1, 1, Bytes("x"), Soon());
  EXPECT_EQ(sent.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(sent.message()), HasSubstr("shut down"));
}

TEST(LocalTransportTest, RanksOutOfRangeAreInvalidArgument) {
  auto hub = LocalHub::Create(2);
  auto bad = hub->Endpoint(5);
  EXPECT_EQ(bad->Send(0, 1, Bytes("x"), Soon()).code(), absl::StatusCode::kInvalidArgument);
  auto good = hub->Endpoint(0);
  EXPECT_EQ(good->Send(2, 1, Bytes("x"), Soon()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(good->Recv(-1, 1, Soon()).status().code(), absl::StatusCode::kInvalidArgument);
}

// Every rank streams numbered messages to every other rank on two tags at
// once; each stream must arrive complete and in order.
TEST(LocalTransportTest, ConcurrentStreamsKeepOrder) {
  constexpr int kRanks = 4;
  constexpr int kMessages = 300;
  auto hub = LocalHub::Create(kRanks);
  std::vector<std::string> errors(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      auto t = hub->Endpoint(r);
      for (int i = 0; i < kMessages; ++i) {
        for (int p = 0; p < kRanks; ++p) {
          if (p == r) continue;
          for (uint32_t tag : {1u, 2u}) {
            absl::Status s = t->Send(p, tag, Bytes(absl::StrCat(r, ":", tag, ":", i)), Soon());
            if (!s.ok()) errors[r] = s.ToString();
          }
        }
      }
      for (int p = 0; p < kRanks; ++p) {
        if (p == r) continue;
        for (int i = 0; i < kMessages; ++i) {
          for (uint32_t tag : {2u, 1u}) {
            std::string got = RecvString(*t, p, tag);
            if (got != absl::StrCat(p, ":", tag, ":", i)) errors[r] = "out of order: " + got;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int r = 0; r < kRanks; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  EXPECT_EQ(hub->PendingMessages(), 0);
}

TEST(LocalTransportRegistryTest, LocalIsRegistered) {
  std::vector<std::string> names = TransportRegistry::Global().Names();
  EXPECT_NE(std::find(names.begin(), names.end(), "local"), names.end());
}

TEST(LocalTransportRegistryTest, CreatesASingleNodeTransport) {
  TransportOptions opts;
  opts.rank = 0;
  opts.world_size = 1;
  absl::StatusOr<std::unique_ptr<Transport>> t = CreateTransport("local", opts);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->rank(), 0);
  EXPECT_EQ((*t)->world_size(), 1);
  ASSERT_TRUE((*t)->Send(0, 1, Bytes("self"), Soon()).ok());
  EXPECT_EQ(RecvString(**t, 0, 1), "self");
}

TEST(LocalTransportRegistryTest, MultiRankNeedsALocalHub) {
  TransportOptions opts;
  opts.rank = 1;
  opts.world_size = 4;
  absl::StatusOr<std::unique_ptr<Transport>> t = CreateTransport("local", opts);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()),
              HasSubstr("the local transport's ranks must be created from one LocalHub"));
}

TEST(LocalTransportRegistryTest, UnknownTransportIsNotFound) {
  EXPECT_EQ(CreateTransport("carrier-pigeon", TransportOptions{}).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace shardlm
