#include "transport/tcp/handshake.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/tcp/connection.h"
#include "transport/tcp/socket.h"

namespace shardlm {
namespace tcp {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kTimeout = absl::Seconds(5);

HandshakeOptions Opts(int rank, const std::string& secret) {
  HandshakeOptions o;
  o.rank = rank;
  o.world_size = 3;
  o.secret = secret;
  o.build = "test-" + std::to_string(rank);
  return o;
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

class HandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Listener> l = Listener::Listen("127.0.0.1", 0, &clock_);
    ASSERT_TRUE(l.ok()) << l.status();
    listener_ = std::make_unique<Listener>(*std::move(l));
  }

  absl::Time Deadline() const { return clock_.Now() + kTimeout; }

  // Accepts one connection and runs the listener's handshake on it.
  absl::StatusOr<HandshakeResult> ServeOne(const HandshakeOptions& o) {
    absl::StatusOr<Socket> s = listener_->Accept(Deadline());
    if (!s.ok()) return s.status();
    FramedConnection conn(*std::move(s));
    return ListenerHandshake(conn, o, Deadline());
  }

  absl::StatusOr<HandshakeResult> Dial(const HandshakeOptions& o) {
    absl::StatusOr<Socket> s = Connect("127.0.0.1", listener_->port(), Deadline(), &clock_);
    if (!s.ok()) return s.status();
    FramedConnection conn(*std::move(s));
    return DialerHandshake(conn, o, Deadline());
  }

  // Runs both sides; first: the listener's result, second: the dialer's.
  std::pair<absl::StatusOr<HandshakeResult>, absl::StatusOr<HandshakeResult>> Run(
      const HandshakeOptions& listener, const HandshakeOptions& dialer) {
    absl::StatusOr<HandshakeResult> l = absl::UnknownError("not run");
    std::thread t([&] { l = ServeOne(listener); });
    absl::StatusOr<HandshakeResult> d = Dial(dialer);
    t.join();
    return {std::move(l), std::move(d)};
  }

  RealClock clock_;
  std::unique_ptr<Listener> listener_;
};

TEST_F(HandshakeTest, SameSecretAuthenticates) {
  auto [l, d] = Run(Opts(1, "hunter2"), Opts(0, "hunter2"));
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(l->authenticated);
  EXPECT_TRUE(d->authenticated);
  EXPECT_EQ(l->peer_rank, 0);
  EXPECT_EQ(d->peer_rank, 1);
  EXPECT_EQ(l->peer_world_size, 3);
  EXPECT_EQ(l->peer_build, "test-0");
}

TEST_F(HandshakeTest, WrongSecretRejectedOnBothSides) {
  auto [l, d] = Run(Opts(1, "hunter2"), Opts(0, "hunter3"));
  EXPECT_EQ(l.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Msg(l.status()), HasSubstr("authentication failed: wrong shared secret"));
  EXPECT_THAT(Msg(d.status()), HasSubstr("authentication failed: wrong shared secret"));
  EXPECT_THAT(Msg(l.status()), HasSubstr("127.0.0.1:"));
  EXPECT_THAT(Msg(d.status()), HasSubstr(absl::StrCat("127.0.0.1:", listener_->port())));
}

TEST_F(HandshakeTest, NoSecretOnEitherSideIsUnauthenticatedOk) {
  auto [l, d] = Run(Opts(1, ""), Opts(0, ""));
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(l->authenticated);
  EXPECT_FALSE(d->authenticated);
  EXPECT_EQ(d->peer_rank, 1);
}

TEST_F(HandshakeTest, SecretOnListenerOnlyRejected) {
  auto [l, d] = Run(Opts(1, "hunter2"), Opts(0, ""));
  EXPECT_EQ(l.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Msg(l.status()), HasSubstr("peer sent no authentication but --secret-file is set"));
  EXPECT_THAT(Msg(d.status()), HasSubstr("peer requires a shared secret (--secret-file)"));
}

TEST_F(HandshakeTest, SecretOnDialerOnlyRejected) {
  auto [l, d] = Run(Opts(1, ""), Opts(0, "hunter2"));
  EXPECT_EQ(l.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Msg(l.status()), HasSubstr("peer requires a shared secret (--secret-file)"));
  EXPECT_THAT(Msg(d.status()), HasSubstr("peer sent no authentication but --secret-file is set"));
}

TEST_F(HandshakeTest, VersionMismatchRejected) {
  HandshakeOptions future = Opts(0, "hunter2");
  future.protocol_version = 2;
  auto [l, d] = Run(Opts(1, "hunter2"), future);
  EXPECT_EQ(l.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(l.status()), HasSubstr("protocol version 2, expected 1"));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(d.status()), HasSubstr("protocol version 1, expected 2"));
}

TEST_F(HandshakeTest, GarbageThenGoodPeer) {
  absl::StatusOr<HandshakeResult> bad = absl::UnknownError("not run");
  absl::StatusOr<HandshakeResult> good = absl::UnknownError("not run");
  std::thread server([&] {
    bad = ServeOne(Opts(1, "k"));
    good = ServeOne(Opts(1, "k"));
  });
  {
    absl::StatusOr<Socket> s = Connect("127.0.0.1", listener_->port(), Deadline(), &clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    std::vector<uint8_t> junk(200);
    uint32_t x = 12345;
    for (auto& b : junk) b = static_cast<uint8_t>((x = x * 1103515245u + 12345u) >> 16);
    junk[0] = 0;  // never the magic
    ASSERT_TRUE(s->SendAll(junk, Deadline()).ok());
    absl::StatusOr<HandshakeResult> d = Dial(Opts(0, "k"));
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(d->authenticated);
  }
  server.join();
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(bad.status()), HasSubstr("not a shardlm peer (bad magic)"));
  EXPECT_THAT(Msg(bad.status()), HasSubstr("127.0.0.1:"));
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_TRUE(good->authenticated);
}

TEST_F(HandshakeTest, DialerClosingBeforeHandshakeFailsPromptly) {
  absl::StatusOr<HandshakeResult> l = absl::UnknownError("not run");
  const absl::Time start = clock_.Now();
  std::thread server([&] { l = ServeOne(Opts(1, "k")); });
  {
    absl::StatusOr<Socket> s = Connect("127.0.0.1", listener_->port(), Deadline(), &clock_);
    ASSERT_TRUE(s.ok()) << s.status();
  }  // closed
  server.join();
  EXPECT_EQ(l.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(l.status()), HasSubstr("connection closed by 127.0.0.1:"));
  EXPECT_LT(clock_.Now() - start, absl::Seconds(2));
}

TEST_F(HandshakeTest, SilentDialerHitsDeadline) {
  absl::StatusOr<Socket> s = Connect("127.0.0.1", listener_->port(), Deadline(), &clock_);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<Socket> a = listener_->Accept(Deadline());
  ASSERT_TRUE(a.ok()) << a.status();
  FramedConnection conn(*std::move(a));
  const absl::Time start = clock_.Now();
  absl::StatusOr<HandshakeResult> r =
      ListenerHandshake(conn, Opts(1, "k"), start + absl::Milliseconds(300));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Msg(r.status()), HasSubstr(conn.peer()));
  EXPECT_LT(clock_.Now() - start, absl::Seconds(2));
}

class SecretFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& contents) {
    const char* dir = std::getenv("TEST_TMPDIR");
    const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    std::fwrite(contents.data(), 1, contents.size(), f);
    std::fclose(f);
    return path;
  }
};

TEST_F(SecretFileTest, StripsOneTrailingNewline) {
  absl::StatusOr<std::string> s = ReadSecretFile(Write("a", "s3cret\n"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, "s3cret");
  s = ReadSecretFile(Write("b", "with space \r\n"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, "with space ");
  s = ReadSecretFile(Write("c", "raw"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, "raw");
}

TEST_F(SecretFileTest, EmptyOrMissingIsAClearError) {
  const std::string empty = Write("empty", "\n");
  absl::StatusOr<std::string> s = ReadSecretFile(empty);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()), HasSubstr("secret file " + empty + " is empty"));
  s = ReadSecretFile("/nonexistent/secret");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()), HasSubstr("cannot read secret file /nonexistent/secret"));
}

}  // namespace
}  // namespace tcp
}  // namespace shardlm
