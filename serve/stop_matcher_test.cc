#include "serve/stop_matcher.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace shardlm::serve {
namespace {

// Feeds `pieces` and returns everything emitted (Push and Flush).
std::string Feed(StopMatcher& m, const std::vector<std::string>& pieces,
                std::vector<std::string>* emitted = nullptr) {
  std::string out;
  for (const std::string& p : pieces) {
    const std::string e = m.Push(p);
    if (emitted != nullptr) emitted->push_back(e);
    out += e;
  }
  return out + m.Flush();
}

TEST(StopMatcherTest, NoStopsPassesEverythingAtOnce) {
  StopMatcher m({});
  EXPECT_EQ(m.Push("abc"), "abc");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcherTest, StopAcrossPiecesNeverLeaks) {
  StopMatcher m({"\nUser:"});
  std::vector<std::string> emitted;
  EXPECT_EQ(Feed(m, {"Hello", " there", "\n", "Us", "er", ": more"}, &emitted), "Hello there");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(emitted, (std::vector<std::string>{"Hello", " there", "", "", "", ""}));
}

TEST(StopMatcherTest, HeldTextIsReleasedWhenTheMatchBreaks) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.Push("the E"), "the ");
  EXPECT_EQ(m.Push("N"), "");
  EXPECT_EQ(m.Push("D?"), "");
  EXPECT_TRUE(m.stopped());
  StopMatcher n({"END"});
  EXPECT_EQ(n.Push("the EN"), "the ");
  EXPECT_EQ(n.Push("ough"), "ENough");
  EXPECT_FALSE(n.stopped());
}

TEST(StopMatcherTest, FlushReturnsAPartialMatchAtTheEnd) {
  StopMatcher m({"stop"});
  EXPECT_EQ(Feed(m, {"a st"}), "a st");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcherTest, EarliestOfSeveralStopsWins) {
  StopMatcher m({"cat", "a c", ""});
  EXPECT_EQ(Feed(m, {"a cat"}), "");
  EXPECT_TRUE(m.stopped());
  StopMatcher n({"zz", "b"});
  EXPECT_EQ(Feed(n, {"aab zz"}), "aa");
}

TEST(StopMatcherTest, PushesAfterTheStopAreDropped) {
  StopMatcher m({"."});
  EXPECT_EQ(m.Push("One. Two"), "One");
  EXPECT_EQ(m.Push("three"), "");
  EXPECT_EQ(m.Flush(), "");
}

}  // namespace
}  // namespace shardlm::serve
