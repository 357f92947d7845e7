#include "core/generator.h"

#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = testing::ModelPath("stories260K.gguf");
    if (path.empty()) GTEST_SKIP() << "../shared/models/stories260K.gguf is absent";
    file_ = std::move(GgufFile::Open(path).value());
    tokenizer_ = std::move(Tokenizer::FromGguf(*file_).value());
    backend_ = CpuBackend::Create(BackendOptions{2}).value();
  }

  std::unique_ptr<Engine> MakeEngine(int64_t ctx) {
    EngineOptions opts;
    opts.max_seq_len = ctx;
    return std::move(Engine::Create(file_.get(), backend_.get(), opts).value());
  }

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<CpuBackend> backend_;
  ManualClock clock_;
};

TEST_F(GeneratorTest, GreedyFromBosIsTheKnownStory) {
  auto engine = MakeEngine(512);
  Sampler sampler({0.0, 1.0, 1});
  std::vector<int32_t> out;
  const std::vector<int32_t> prompt = {tokenizer_->bos_id()};
  auto stats = Generate(engine.get(), &sampler, prompt, 40, tokenizer_->eos_id(), &clock_,
                        [&](int32_t id) {
                          out.push_back(id);
                          return absl::OkStatus();
                        });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->generated_tokens, 40);
  EXPECT_EQ(stats->prompt_tokens, 1);
  EXPECT_FALSE(stats->stopped_at_eos);
  std::vector<int32_t> with_bos = {tokenizer_->bos_id()};
  with_bos.insert(with_bos.end(), out.begin(), out.end());
  EXPECT_EQ(tokenizer_->Decode(with_bos).substr(0, 51),
            "Once upon a time, there was a little girl named Lil");
  // The last sampled token is not fed back: 1 prompt + 39 decoded.
  EXPECT_EQ(engine->position(), 40);
}

TEST_F(GeneratorTest, StopsWhenTheContextIsFull) {
  auto engine = MakeEngine(10);
  Sampler sampler({0.0, 1.0, 1});
  int n = 0;
  const std::vector<int32_t> prompt = {tokenizer_->bos_id()};
  auto stats = Generate(engine.get(), &sampler, prompt, 100, tokenizer_->eos_id(), &clock_,
                        [&](int32_t) {
                          ++n;
                          return absl::OkStatus();
                        });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->context_full);
  EXPECT_EQ(n, 10);
}

TEST_F(GeneratorTest, StopsAtEosAndPropagatesCallbackErrors) {
  auto engine = MakeEngine(256);
  Sampler sampler({0.0, 1.0, 1});
  // Treat the first greedy token as "EOS": nothing is emitted.
  const std::vector<int32_t> prompt = {tokenizer_->bos_id()};
  auto first = engine->Forward(prompt).value();
  engine->Reset();
  const int32_t eos = Argmax(first);
  int n = 0;
  auto stats = Generate(engine.get(), &sampler, prompt, 10, eos, &clock_, [&](int32_t) {
    ++n;
    return absl::OkStatus();
  });
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(stats->stopped_at_eos);
  EXPECT_EQ(n, 0);
  engine->Reset();
  auto failed = Generate(engine.get(), &sampler, prompt, 10, tokenizer_->eos_id(), &clock_,
                         [&](int32_t) { return absl::CancelledError("client went away"); });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kCancelled);
}

TEST_F(GeneratorTest, RejectsEmptyAndOverlongPrompts) {
  auto engine = MakeEngine(4);
  Sampler sampler({0.0, 1.0, 1});
  auto ignore = [](int32_t) { return absl::OkStatus(); };
  EXPECT_FALSE(Generate(engine.get(), &sampler, {}, 5, 2, &clock_, ignore).ok());
  const std::vector<int32_t> longp(5, 1);
  EXPECT_EQ(Generate(engine.get(), &sampler, longp, 5, 2, &clock_, ignore).status().code(),
            absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace shardlm
