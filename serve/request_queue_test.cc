#include "serve/request_queue.h"

#include <memory>
#include <thread>

#include "gtest/gtest.h"

namespace shardlm::serve {
namespace {

std::shared_ptr<QueuedRequest> Request(int64_t max_tokens) {
  auto r = std::make_shared<QueuedRequest>();
  r->job.max_tokens = max_tokens;
  return r;
}

TEST(RequestQueueTest, FirstInFirstOutNumbered) {
  RequestQueue q(8);
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(q.Push(Request(i)).ok());
  EXPECT_EQ(q.size(), 3u);
  for (int i = 1; i <= 3; ++i) {
    std::shared_ptr<QueuedRequest> r = q.Pop();
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->job.max_tokens, i);
    EXPECT_EQ(r->number, static_cast<uint64_t>(i));
  }
}

TEST(RequestQueueTest, FullAndClosedQueuesRefuse) {
  RequestQueue q(2);
  ASSERT_TRUE(q.Push(Request(1)).ok());
  ASSERT_TRUE(q.Push(Request(2)).ok());
  EXPECT_TRUE(absl::IsUnavailable(q.Push(Request(3))));
  q.Close();
  EXPECT_TRUE(absl::IsUnavailable(q.Push(Request(4))));
  EXPECT_NE(q.Pop(), nullptr);  // drains what was queued
  EXPECT_NE(q.Pop(), nullptr);
  EXPECT_EQ(q.Pop(), nullptr);
}

TEST(RequestQueueTest, PopWaitsForAPushFromAnotherThread) {
  RequestQueue q(1);
  std::thread producer([&] { ASSERT_TRUE(q.Push(Request(5)).ok()); });
  std::shared_ptr<QueuedRequest> r = q.Pop();
  producer.join();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->job.max_tokens, 5);
}

TEST(RequestChannelTest, EventsInOrderTimeoutAndCancel) {
  RequestChannel c;
  EXPECT_FALSE(c.Pop(absl::Milliseconds(10)).has_value());
  StreamEvent a;
  a.text = "a";
  StreamEvent done;
  done.kind = StreamEvent::Kind::kDone;
  c.Push(a);
  c.Push(done);
  EXPECT_EQ(c.Pop(absl::Seconds(1))->text, "a");
  EXPECT_EQ(c.Pop(absl::Seconds(1))->kind, StreamEvent::Kind::kDone);
  EXPECT_FALSE(c.cancelled());
  c.Cancel();
  EXPECT_TRUE(c.cancelled());
}

}  // namespace
}  // namespace shardlm::serve
