// TcpTransport and the session mesh over loopback, with every rank a thread
// of this process: collectives across the mesh, a worker serving sessions
// one after another, and the listener surviving bad peers.
#include "transport/tcp/mesh.h"

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/collectives.h"
#include "core/wire.pb.h"
#include "transport/tcp/connection.h"
#include "transport/tcp/frame.h"
#include "transport/tcp/handshake.h"
#include "transport/tcp/socket.h"
#include "transport/tcp/tcp_transport.h"
#include "transport/transport_registry.h"

namespace shardlm {
namespace tcp {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kTimeout = absl::Seconds(10);

class MeshTest : public ::testing::Test {
 protected:
  MeshOptions Options(const std::string& secret) {
    MeshOptions o;
    o.secret = secret;
    o.clock = &clock_;
    o.handshake_timeout = absl::Seconds(3);
    o.setup_timeout = absl::Seconds(5);
    return o;
  }

  // Starts `n` listeners with `secret`.
  void StartWorkers(int n, const std::string& secret) {
    for (int i = 0; i < n; ++i) {
      auto l = MeshListener::Start("127.0.0.1", 0, Options(secret));
      ASSERT_TRUE(l.ok()) << l.status();
      workers_.push_back(*std::move(l));
    }
  }

  std::vector<HostPort> Addresses() const {
    std::vector<HostPort> a;
    for (const auto& w : workers_) a.push_back({"127.0.0.1", w->port()});
    return a;
  }

  // Each worker takes one session on a thread and runs `body` on its rank.
  template <typename Body>
  std::vector<std::thread> ServeOnce(Body body) {
    std::vector<std::thread> threads;
    for (auto& w : workers_) {
      threads.emplace_back([this, &w, body] {
        auto t = w->NextSession(clock_.Now() + kTimeout);
        ASSERT_TRUE(t.ok()) << t.status();
        body(**t);
        (*t)->Abort();
        w->EndSession();
      });
    }
    return threads;
  }

  // One whole session of every worker with a root using `secret`: all
  // ranks all-reduce with `algorithm` and check the sum.
  void RunSession(const std::string& secret, AllReduceAlgorithm algorithm);

  RealClock clock_;
  std::vector<std::unique_ptr<MeshListener>> workers_;
};

// Every rank all-reduces (rank + 1) * (i + 1); the sum is known.
void CheckAllReduce(Transport& t, AllReduceAlgorithm algorithm, Clock* clock) {
  const int n = t.world_size();
  std::vector<int64_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = (t.rank() + 1) * static_cast<int64_t>(i + 1);
  ASSERT_TRUE(AllReduceSum(t, absl::MakeSpan(data), algorithm, 7, clock->Now() + kTimeout).ok());
  const int64_t ranks = n * (n + 1) / 2;
  for (size_t i = 0; i < data.size(); ++i) ASSERT_EQ(data[i], ranks * static_cast<int64_t>(i + 1));
}

void MeshTest::RunSession(const std::string& secret, AllReduceAlgorithm algorithm) {
  auto threads = ServeOnce([this, algorithm](Transport& t) {
    CheckAllReduce(t, algorithm, &clock_);
  });
  auto root = DialCluster(Addresses(), Options(secret));
  ASSERT_TRUE(root.ok()) << root.status();
  CheckAllReduce(**root, algorithm, &clock_);
  for (auto& th : threads) th.join();
}

TEST_F(MeshTest, FourRanksRunCollectives) {
  StartWorkers(3, "s3cret");
  auto threads = ServeOnce([this](Transport& t) {
    CheckAllReduce(t, AllReduceAlgorithm::kRing, &clock_);
    CheckAllReduce(t, AllReduceAlgorithm::kDirect, &clock_);
    EXPECT_TRUE(Barrier(t, 9, clock_.Now() + kTimeout).ok());
  });
  auto root = DialCluster(Addresses(), Options("s3cret"));
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ((*root)->world_size(), 4);
  CheckAllReduce(**root, AllReduceAlgorithm::kRing, &clock_);
  CheckAllReduce(**root, AllReduceAlgorithm::kDirect, &clock_);
  EXPECT_TRUE(Barrier(**root, 9, clock_.Now() + kTimeout).ok());
  for (auto& th : threads) th.join();
}

TEST_F(MeshTest, LargeMessagesAndSelfSend) {
  StartWorkers(1, "");
  std::vector<uint8_t> big(5 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  auto threads = ServeOnce([&](Transport& t) {
    auto got = t.Recv(0, 3, clock_.Now() + kTimeout);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, big);
    EXPECT_TRUE(t.Send(0, 4, *got, clock_.Now() + kTimeout).ok());
  });
  auto root = DialCluster(Addresses(), Options(""));
  ASSERT_TRUE(root.ok()) << root.status();
  ASSERT_TRUE((*root)->Send(1, 3, big, clock_.Now() + kTimeout).ok());
  ASSERT_TRUE((*root)->Send(0, 5, std::vector<uint8_t>{1, 2}, clock_.Now() + kTimeout).ok());
  auto self = (*root)->Recv(0, 5, clock_.Now() + kTimeout);
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(self->size(), 2u);
  auto back = (*root)->Recv(1, 4, clock_.Now() + kTimeout);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, big);
  for (auto& th : threads) th.join();
}

TEST_F(MeshTest, WorkerServesSessionsOneAfterAnother) {
  StartWorkers(2, "k");
  for (int session = 0; session < 3; ++session) RunSession("k", AllReduceAlgorithm::kRing);
}

TEST_F(MeshTest, WrongSecretIsRefusedAndTheWorkerStaysUsable) {
  StartWorkers(1, "right");
  auto bad = DialCluster(Addresses(), Options("wrong"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated) << bad.status();
  EXPECT_THAT(bad.status().message(), HasSubstr("wrong shared secret"));
  auto none = DialCluster(Addresses(), Options(""));
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("--secret-file"));
  RunSession("right", AllReduceAlgorithm::kDirect);
  EXPECT_GE(workers_[0]->rejected(), 2);
}

TEST_F(MeshTest, GarbageBytesAndSilentPeersDoNotStopTheListener) {
  StartWorkers(1, "");
  {  // random bytes
    auto s = Connect("127.0.0.1", workers_[0]->port(), clock_.Now() + kTimeout, &clock_);
    ASSERT_TRUE(s.ok());
    std::vector<uint8_t> junk(200);
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(i * 131 + 17);
    ASSERT_TRUE(s->SendAll(junk, clock_.Now() + kTimeout).ok());
  }
  // A frame header announcing a payload far beyond the pre-auth limit.
  auto s = Connect("127.0.0.1", workers_[0]->port(), clock_.Now() + kTimeout, &clock_);
  ASSERT_TRUE(s.ok());
  std::vector<uint8_t> empty;
  auto header = EncodeFrameHeader(kFrameHello, 0, empty);
  header[12] = 0xff;
  header[13] = 0xff;
  header[14] = 0xff;
  header[15] = 0x7f;
  ASSERT_TRUE(s->SendAll(header, clock_.Now() + kTimeout).ok());
  // A peer that connects and says nothing.
  auto silent = Connect("127.0.0.1", workers_[0]->port(), clock_.Now() + kTimeout, &clock_);
  ASSERT_TRUE(silent.ok());
  RunSession("", AllReduceAlgorithm::kRing);
}

TEST_F(MeshTest, BusyWorkerRefusesASecondRoot) {
  StartWorkers(1, "");
  auto threads = ServeOnce([this](Transport& t) {
    EXPECT_TRUE(Barrier(t, 1, clock_.Now() + kTimeout).ok());
  });
  auto first = DialCluster(Addresses(), Options(""));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = DialCluster(Addresses(), Options(""));
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("busy"));
  EXPECT_TRUE(Barrier(**first, 1, clock_.Now() + kTimeout).ok());
  for (auto& th : threads) th.join();
}

TEST_F(MeshTest, PeerDisappearingFailsRecvPromptly) {
  StartWorkers(1, "");
  auto threads = ServeOnce([](Transport& t) {});  // the worker leaves at once
  auto root = DialCluster(Addresses(), Options(""));
  ASSERT_TRUE(root.ok()) << root.status();
  for (auto& th : threads) th.join();
  const absl::Time start = clock_.Now();
  auto got = (*root)->Recv(1, 1, start + absl::Seconds(30));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("rank 1"));
  EXPECT_LT(clock_.Now() - start, absl::Seconds(5));
}

// With a failure timeout every link heartbeats: a session idle for several
// timeouts stays up.
TEST_F(MeshTest, HeartbeatsKeepAQuietSessionAlive) {
  StartWorkers(2, "");
  auto threads = ServeOnce([this](Transport& t) {
    auto got = t.Recv(0, 7, clock_.Now() + kTimeout);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(t.Send(0, 8, *got, clock_.Now() + kTimeout).ok());
  });
  MeshOptions options = Options("");
  options.failure_timeout = absl::Milliseconds(300);
  auto root = DialCluster(Addresses(), options);
  ASSERT_TRUE(root.ok()) << root.status();
  absl::SleepFor(absl::Milliseconds(1500));  // five failure timeouts of silence
  const std::vector<uint8_t> ping = {1, 2, 3};
  for (int r = 1; r <= 2; ++r) {
    ASSERT_TRUE((*root)->Send(r, 7, ping, clock_.Now() + kTimeout).ok());
    auto got = (*root)->Recv(r, 8, clock_.Now() + kTimeout);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, ping);
  }
  for (auto& th : threads) th.join();
}

// A worker that stops sending anything (a frozen process) is declared dead
// after the failure timeout, not after the 10 s deadline of the call.
TEST_F(MeshTest, SilentWorkerIsDeclaredDead) {
  StartWorkers(1, "");
  absl::Status worker_saw;
  auto threads = ServeOnce([&](Transport& t) {
    static_cast<TcpTransport&>(t).PauseHeartbeatsForTesting(true);
    worker_saw = t.Recv(0, 7, clock_.Now() + kTimeout).status();
  });
  MeshOptions options = Options("");
  options.failure_timeout = absl::Milliseconds(400);
  auto root = DialCluster(Addresses(), options);
  ASSERT_TRUE(root.ok()) << root.status();
  const absl::Time start = clock_.Now();
  auto got = (*root)->Recv(1, 7, start + kTimeout);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("rank 1"));
  EXPECT_THAT(got.status().message(), HasSubstr("went silent"));
  EXPECT_LT(clock_.Now() - start, absl::Seconds(5));
  for (auto& th : threads) th.join();
  // The worker learns at once that its session is over (the root closed it).
  EXPECT_EQ(worker_saw.code(), absl::StatusCode::kUnavailable) << worker_saw;
}

// The workers adopt the root's failure timeout: a silent root is dead to
// them, and a pause shorter than the timeout costs nothing.
TEST_F(MeshTest, WorkersDeclareASilentRootDeadButSurviveAShortPause) {
  StartWorkers(1, "");
  absl::Status first, second;
  absl::Duration waited;
  auto threads = ServeOnce([&](Transport& t) {
    first = t.Recv(0, 7, clock_.Now() + kTimeout).status();
    const absl::Time start = clock_.Now();
    second = t.Recv(0, 7, start + kTimeout).status();
    waited = clock_.Now() - start;
  });
  MeshOptions options = Options("");
  options.failure_timeout = absl::Milliseconds(600);
  auto root = DialCluster(Addresses(), options);
  ASSERT_TRUE(root.ok()) << root.status();
  TcpTransport& t = **root;
  t.PauseHeartbeatsForTesting(true);
  absl::SleepFor(absl::Milliseconds(150));  // a quarter of the timeout
  t.PauseHeartbeatsForTesting(false);
  absl::SleepFor(absl::Milliseconds(900));
  ASSERT_TRUE(t.Send(1, 7, std::vector<uint8_t>{1}, clock_.Now() + kTimeout).ok());
  t.PauseHeartbeatsForTesting(true);  // now for good
  for (auto& th : threads) th.join();
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_EQ(second.code(), absl::StatusCode::kUnavailable) << second;
  EXPECT_THAT(second.message(), HasSubstr("went silent"));
  EXPECT_LT(waited, absl::Seconds(5));
}

TEST_F(MeshTest, UnreachableWorkerIsAClearError) {
  // A port nobody listens on: bind one, then close it.
  int port;
  {
    auto l = Listener::Listen("127.0.0.1", 0, &clock_);
    ASSERT_TRUE(l.ok());
    port = l->port();
  }
  auto root = DialCluster({{"127.0.0.1", port}}, Options(""));
  ASSERT_FALSE(root.ok());
  EXPECT_THAT(root.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", port)));
}

TEST_F(MeshTest, RegisteredAsTcp) {
  StartWorkers(1, "");
  auto threads = ServeOnce([this](Transport& t) {
    CheckAllReduce(t, AllReduceAlgorithm::kRing, &clock_);
  });
  TransportOptions opts;
  opts.world_size = 2;
  opts.clock = &clock_;
  opts.params["workers"] = absl::StrCat("127.0.0.1:", workers_[0]->port());
  auto t = CreateTransport("tcp", opts);
  ASSERT_TRUE(t.ok()) << t.status();
  CheckAllReduce(**t, AllReduceAlgorithm::kRing, &clock_);
  for (auto& th : threads) th.join();
}

// A hand-driven root: handshake and MeshJoin over a raw connection, keeping
// a second descriptor of the same socket to write arbitrary bytes.
struct RawRoot {
  std::unique_ptr<FramedConnection> conn;
  Socket raw;
};

RawRoot DialRaw(int port, int world, Clock* clock, int version = kProtocolVersion) {
  RawRoot r;
  auto s = Connect("127.0.0.1", port, clock->Now() + kTimeout, clock);
  EXPECT_TRUE(s.ok()) << s.status();
  r.raw = Socket(UniqueFd(dup(s->fd())), s->peer(), clock);
  r.conn = std::make_unique<FramedConnection>(*std::move(s));
  HandshakeOptions hs;
  hs.world_size = world;
  hs.protocol_version = version;
  auto result = DialerHandshake(*r.conn, hs, clock->Now() + kTimeout);
  if (!result.ok()) {
    r.conn.reset();
    return r;
  }
  auto send = [&](const wire::MeshJoin& join) {
    const std::string bytes = join.SerializeAsString();
    EXPECT_TRUE(r.conn
                    ->SendFrame(kFrameJoin, 0,
                                absl::MakeConstSpan(
                                    reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                                clock->Now() + kTimeout)
                    .ok());
  };
  wire::MeshJoin join;
  join.set_role(wire::MeshJoin::ROOT);
  send(join);  // reserve
  auto reserved = r.conn->RecvFrame(clock->Now() + kTimeout);
  EXPECT_TRUE(reserved.ok() && reserved->type == kFrameReady);
  join.set_session_id(77);
  join.set_rank(1);
  join.set_world_size(world);
  for (int i = 0; i < world; ++i) join.add_peers(i == 0 ? "" : "127.0.0.1:1");
  send(join);  // assign
  return r;
}

TEST_F(MeshTest, VersionMismatchIsRefusedAndTheWorkerStaysUsable) {
  StartWorkers(1, "");
  auto s = Connect("127.0.0.1", workers_[0]->port(), clock_.Now() + kTimeout, &clock_);
  ASSERT_TRUE(s.ok());
  FramedConnection conn(*std::move(s));
  HandshakeOptions hs;
  hs.protocol_version = 2;
  auto result = DialerHandshake(conn, hs, clock_.Now() + kTimeout);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("protocol version"));
  RunSession("", AllReduceAlgorithm::kRing);
}

// A data frame whose checksum does not match, or whose length is beyond the
// maximum, fails the link to that peer with a clear error, never a hang.
void CheckCorruptDataFrame(MeshTest* test, std::vector<std::unique_ptr<MeshListener>>& workers,
                           Clock* clock, bool oversized, const std::string& want) {
  std::thread worker([&] {
    auto t = workers[0]->NextSession(clock->Now() + kTimeout);
    ASSERT_TRUE(t.ok()) << t.status();
    const absl::Time start = clock->Now();
    auto got = (*t)->Recv(0, 3, start + absl::Seconds(30));
    ASSERT_FALSE(got.ok());
    EXPECT_THAT(got.status().message(), HasSubstr(want));
    EXPECT_LT(clock->Now() - start, absl::Seconds(5));
    workers[0]->EndSession();
  });
  RawRoot root = DialRaw(workers[0]->port(), 2, clock);
  ASSERT_NE(root.conn, nullptr);
  auto ready = root.conn->RecvFrame(clock->Now() + kTimeout);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->type, kFrameReady);
  std::vector<uint8_t> payload = {1, 2, 3, 4};
  std::vector<uint8_t> frame = EncodeFrame(kFrameData, 3, payload);
  if (oversized) {
    frame.resize(kFrameHeaderSize);
    frame[15] = 0x7f;  // length ~2 GiB
  } else {
    frame.back() ^= 0xff;  // payload no longer matches the checksum
  }
  ASSERT_TRUE(root.raw.SendAll(frame, clock->Now() + kTimeout).ok());
  worker.join();
}

TEST_F(MeshTest, BadChecksumFailsTheLink) {
  StartWorkers(1, "");
  CheckCorruptDataFrame(this, workers_, &clock_, false, "checksum");
}

TEST_F(MeshTest, OversizedFrameFailsTheLink) {
  StartWorkers(1, "");
  CheckCorruptDataFrame(this, workers_, &clock_, true, "exceeds the maximum");
}

TEST_F(MeshTest, RootLeavingDuringSetupFreesTheWorker) {
  StartWorkers(1, "");
  {
    // World 3: the worker waits for rank 2, which never comes; the root
    // then goes away.
    RawRoot root = DialRaw(workers_[0]->port(), 3, &clock_);
    ASSERT_NE(root.conn, nullptr);
    const absl::Time start = clock_.Now();
    std::thread closer([&] {
      absl::SleepFor(absl::Milliseconds(200));
      root.raw.Shutdown();
    });
    auto t = workers_[0]->NextSession(clock_.Now() + kTimeout);
    closer.join();
    ASSERT_FALSE(t.ok());
    EXPECT_THAT(t.status().message(), HasSubstr("left before rank 2 connected"));
    EXPECT_LT(clock_.Now() - start, absl::Seconds(3));
  }
  RunSession("", AllReduceAlgorithm::kRing);
}

TEST(HostPortTest, Parses) {
  auto hp = ParseHostPortList("127.0.0.1:9000,localhost:1");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ((*hp)[1].host, "localhost");
  EXPECT_EQ((*hp)[0].port, 9000);
  EXPECT_FALSE(ParseHostPort("nohost").ok());
  EXPECT_FALSE(ParseHostPort("h:0").ok());
  EXPECT_FALSE(ParseHostPort("h:70000").ok());
  EXPECT_FALSE(ParseHostPort(":80").ok());
  EXPECT_FALSE(ParseHostPortList("a:1,,b:2").ok());
}

}  // namespace
}  // namespace tcp
}  // namespace shardlm
