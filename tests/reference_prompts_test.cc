// Greedy generation from text prompts on the real stories260K model: the
// engine (through the same Tokenizer/Engine/Sampler path `shardlm generate`
// uses) must produce exactly the tokens the double-precision reference picks.
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/engine.h"
#include "core/generator.h"
#include "core/sampler.h"
#include "core/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/reference_llama.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

class ReferencePromptsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferencePromptsTest, GreedyTextMatchesReference) {
  const std::string path = testing::ModelPath("stories260K.gguf");
  if (path.empty()) GTEST_SKIP() << "../shared/models/stories260K.gguf is absent";
  auto file = std::move(GgufFile::Open(path).value());
  auto tokenizer = std::move(Tokenizer::FromGguf(*file).value());
  auto reference = std::move(testing::ReferenceLlama::Create(*file).value());
  auto owned_backend = CpuBackend::Create(BackendOptions{2}).value();
  CpuBackend& backend = *owned_backend;
  auto engine = std::move(Engine::Create(file.get(), &backend, EngineOptions{}).value());

  const int kSteps = 120;
  const std::vector<int32_t> prompt = tokenizer->Encode(GetParam(), /*add_bos=*/true);

  // Reference: token by token, greedy on double logits (lowest id on ties).
  std::vector<double> logits;
  for (int32_t t : prompt) logits = reference->Step(t);
  std::vector<int32_t> want;
  for (int i = 0; i < kSteps; ++i) {
    int32_t best = 0;
    for (size_t k = 1; k < logits.size(); ++k) {
      if (logits[k] > logits[best]) best = static_cast<int32_t>(k);
    }
    if (best == tokenizer->eos_id()) break;
    want.push_back(best);
    logits = reference->Step(best);
  }

  Sampler greedy({0.0, 1.0, 0});
  ManualClock clock;
  std::vector<int32_t> got;
  auto stats = Generate(engine.get(), &greedy, prompt, kSteps, tokenizer->eos_id(), &clock,
                        [&](int32_t id) {
                          got.push_back(id);
                          return absl::OkStatus();
                        });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(got, want);
  Detokenizer detok(tokenizer.get(), prompt.back());
  std::string text = GetParam();
  for (int32_t id : got) text += detok.Push(id);
  text += detok.Flush();
  RecordProperty("text", text);
  EXPECT_GT(want.size(), 20u) << text;
}

INSTANTIATE_TEST_SUITE_P(Prompts, ReferencePromptsTest,
                         ::testing::Values("Once upon a time", "The cat sat on the mat.",
                                           "Tom and Sam went to the park. They",
                                           "Lily was sad because", "café ☃ 123!"),
                         [](const auto& info) { return "prompt" + std::to_string(info.index); });

}  // namespace
}  // namespace shardlm
