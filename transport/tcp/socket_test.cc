#include "transport/tcp/socket.h"

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/tcp/connection.h"
#include "transport/tcp/frame.h"

namespace shardlm {
namespace tcp {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kTimeout = absl::Seconds(5);

class SocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Listener> l = Listener::Listen("127.0.0.1", 0, &clock_);
    ASSERT_TRUE(l.ok()) << l.status();
    listener_ = std::make_unique<Listener>(*std::move(l));
    ASSERT_GT(listener_->port(), 0);
  }

  absl::Time Deadline() const { return clock_.Now() + kTimeout; }

  // A connected pair: first is the dialer's end, second the accepted end.
  std::pair<Socket, Socket> Pair() {
    absl::StatusOr<Socket> a = Connect("127.0.0.1", listener_->port(), Deadline(), &clock_);
    EXPECT_TRUE(a.ok()) << a.status();
    absl::StatusOr<Socket> b = listener_->Accept(Deadline());
    EXPECT_TRUE(b.ok()) << b.status();
    return {*std::move(a), *std::move(b)};
  }

  RealClock clock_;
  std::unique_ptr<Listener> listener_;
};

TEST_F(SocketTest, ConnectAcceptSendRecvFrames) {
  auto [a, b] = Pair();
  EXPECT_EQ(a.peer(), absl::StrCat("127.0.0.1:", listener_->port()));
  EXPECT_THAT(b.peer(), HasSubstr("127.0.0.1:"));
  FramedConnection ca(std::move(a));
  FramedConnection cb(std::move(b));
  std::vector<uint8_t> big(3 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 31);
  // The big frame exceeds the socket buffers: send from another thread.
  std::thread sender([&] {
    EXPECT_TRUE(ca.SendFrame(kFrameData, 5, big, Deadline()).ok());
    EXPECT_TRUE(ca.SendFrame(kFrameData, 6, {}, Deadline()).ok());
  });
  absl::StatusOr<Frame> f1 = cb.RecvFrame(Deadline());
  absl::StatusOr<Frame> f2 = cb.RecvFrame(Deadline());
  sender.join();
  ASSERT_TRUE(f1.ok()) << f1.status();
  ASSERT_TRUE(f2.ok()) << f2.status();
  EXPECT_EQ(f1->tag, 5u);
  EXPECT_EQ(f1->payload, big);
  EXPECT_EQ(f2->tag, 6u);
  EXPECT_TRUE(f2->payload.empty());
  // And back the other way.
  const std::vector<uint8_t> reply = {1, 2, 3};
  ASSERT_TRUE(cb.SendFrame(kFrameData, 9, reply, Deadline()).ok());
  absl::StatusOr<Frame> f3 = ca.RecvFrame(Deadline());
  ASSERT_TRUE(f3.ok()) << f3.status();
  EXPECT_EQ(f3->payload, reply);
}

TEST_F(SocketTest, RecvDeadlineOnSilentPeerThenResumes) {
  auto [a, b] = Pair();
  FramedConnection cb(std::move(b));
  // Part of a frame arrives, then the peer goes silent.
  const std::vector<uint8_t> frame = EncodeFrame(kFrameData, 3, std::vector<uint8_t>(100, 7));
  ASSERT_TRUE(a.SendAll(absl::MakeConstSpan(frame).subspan(0, 30), Deadline()).ok());
  const absl::Time start = clock_.Now();
  absl::StatusOr<Frame> f = cb.RecvFrame(start + absl::Milliseconds(300));
  const absl::Duration waited = clock_.Now() - start;
  EXPECT_EQ(f.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(cb.peer()));
  EXPECT_GE(waited, absl::Milliseconds(290));
  EXPECT_LT(waited, absl::Seconds(2));
  // The rest arrives: the interrupted frame is completed, not lost.
  ASSERT_TRUE(a.SendAll(absl::MakeConstSpan(frame).subspan(30), Deadline()).ok());
  f = cb.RecvFrame(Deadline());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->tag, 3u);
  EXPECT_EQ(f->payload.size(), 100u);
}

TEST_F(SocketTest, PeerClosesMidFrameIsUnavailable) {
  auto [a, b] = Pair();
  FramedConnection cb(std::move(b));
  const std::vector<uint8_t> frame = EncodeFrame(kFrameData, 3, std::vector<uint8_t>(100, 7));
  ASSERT_TRUE(a.SendAll(absl::MakeConstSpan(frame).subspan(0, 40), Deadline()).ok());
  a.Close();
  const absl::Time start = clock_.Now();
  absl::StatusOr<Frame> f = cb.RecvFrame(Deadline());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("connection closed by " + cb.peer()));
  EXPECT_LT(clock_.Now() - start, absl::Seconds(1));
}

TEST_F(SocketTest, GarbageIsRejectedAsBadMagic) {
  auto [a, b] = Pair();
  FramedConnection cb(std::move(b));
  const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(a.SendAll(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(junk.data()),
                                            junk.size()),
                        Deadline())
                  .ok());
  absl::StatusOr<Frame> f = cb.RecvFrame(Deadline());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()),
              HasSubstr(cb.peer() + ": not a shardlm peer (bad magic)"));
  // The stream stays failed.
  EXPECT_EQ(cb.RecvFrame(Deadline()).status(), f.status());
}

TEST_F(SocketTest, OversizedSendRefused) {
  auto [a, b] = Pair();
  FramedConnection ca(std::move(a), /*max_frame_size=*/8);
  absl::Status s = ca.SendFrame(kFrameData, 1, std::vector<uint8_t>(9, 0), Deadline());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("frame of 9 bytes exceeds the maximum 8"));
}

TEST_F(SocketTest, OversizedRecvRefused) {
  auto [a, b] = Pair();
  FramedConnection ca(std::move(a));
  FramedConnection cb(std::move(b), /*max_frame_size=*/8);
  ASSERT_TRUE(ca.SendFrame(kFrameData, 1, std::vector<uint8_t>(9, 0), Deadline()).ok());
  absl::StatusOr<Frame> f = cb.RecvFrame(Deadline());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("frame of 9 bytes exceeds the maximum 8"));
}

TEST_F(SocketTest, AcceptDeadline) {
  const absl::Time start = clock_.Now();
  absl::StatusOr<Socket> s = listener_->Accept(start + absl::Milliseconds(200));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(listener_->address()));
  EXPECT_LT(clock_.Now() - start, absl::Seconds(2));
}

TEST_F(SocketTest, ConnectRefusedNamesPeer) {
  const int port = listener_->port();
  listener_->Close();
  absl::StatusOr<Socket> s = Connect("127.0.0.1", port, Deadline(), &clock_);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(absl::StrCat("127.0.0.1:", port)));
}

TEST_F(SocketTest, SendToClosedPeerFailsWithoutSigpipe) {
  auto [a, b] = Pair();
  b.Close();
  std::vector<uint8_t> chunk(1 << 16, 1);
  absl::Status s;
  for (int i = 0; i < 100 && s.ok(); ++i) s = a.SendAll(chunk, Deadline());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr(a.peer()));
}

}  // namespace
}  // namespace tcp
}  // namespace shardlm
