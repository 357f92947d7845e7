// Tensor parallelism across real processes: `shardlm worker` children on
// 127.0.0.1, the root in this test. For stories260K and synthetic F32, Q8_0
// and Q4_0 models, N = 2, 3, 4 (and uneven shares), the cluster's full
// logits (gathered as every vocabulary candidate) and greedy tokens are
// bit-identical to the single-node Engine in exact numerics. Workers load
// from their own --model copy or get their slices streamed from the root.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/cpu/cpu_backend.h"
#include "core/clock.h"
#include "core/cluster_session.h"
#include "core/cluster_setup.h"
#include "core/engine.h"
#include "core/gguf.h"
#include "core/sampler.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "tests/worker_process.h"
#include "transport/tcp/mesh.h"

namespace shardlm {
namespace {

constexpr int kSteps = 12;

BackendOptions ExactOneThread() {
  BackendOptions o;
  o.threads = 1;
  o.numerics = Numerics::kExact;
  return o;
}

// Full logits of the last token, by vocabulary id, from every candidate.
std::vector<float> LogitsFromCandidates(const std::vector<Candidate>& candidates, int64_t vocab) {
  std::vector<float> logits(vocab, -1.0f);
  for (const Candidate& c : candidates) logits[c.id] = c.logit;
  return logits;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

struct ModelCase {
  std::string name;
  bool real;
  DType type;
};

std::string ModelFile(const ModelCase& c) {
  if (c.real) return testing::ModelPath("stories260K.gguf");
  auto path = testing::WriteSyntheticModelFile(testing::SmallShardedModelSpec(c.type), c.name);
  EXPECT_TRUE(path.ok()) << path.status();
  return path.ok() ? *path : "";
}

class TcpClusterTest : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    path_ = ModelFile(GetParam());
    if (path_.empty()) GTEST_SKIP() << "../shared/models/stories260K.gguf is absent";
    auto model = OpenModelSource(path_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
    // Worker 2 has no copy of the model: its slices are streamed.
    for (int i = 0; i < 3; ++i) {
      std::vector<std::string> args = {"--threads", "1", "--secret-file", SecretFile()};
      if (i != 1) args.insert(args.end(), {"--model", path_});
      auto w = testing::WorkerProcess::Start(args);
      ASSERT_TRUE(w.ok()) << w.status();
      workers_.push_back(*std::move(w));
    }
  }

  static std::string SecretFile() {
    static const std::string path = testing::WriteTempFile("secret", "tcp-cluster-test\n");
    return path;
  }

  // Greedy tokens and the last step's logits on one node.
  void RunSingle(std::vector<int32_t>* tokens, std::vector<float>* logits) {
    auto backend = CpuBackend::Create(ExactOneThread()).value();
    auto engine = Engine::Create(model_.file.get(), backend.get(), EngineOptions{}).value();
    std::vector<int32_t> next = {1, 20, 30};
    for (int step = 0; step < kSteps; ++step) {
      auto out = engine->Forward(next);
      ASSERT_TRUE(out.ok()) << out.status();
      *logits = *out;
      const int32_t id = TopCandidates(*out, 1, 0)[0].id;
      tokens->push_back(id);
      next = {id};
    }
  }

  // The same on a TCP cluster of this root and workers [0, shares.size()-1).
  void RunCluster(const std::vector<int>& shares, std::vector<int32_t>* tokens,
                  std::vector<float>* logits) {
    std::vector<tcp::HostPort> addresses;
    for (size_t i = 0; i + 1 < shares.size(); ++i) {
      addresses.push_back({"127.0.0.1", workers_[i]->port()});
    }
    tcp::MeshOptions mesh;
    mesh.clock = &clock_;
    mesh.secret = "tcp-cluster-test";
    auto transport = tcp::DialCluster(addresses, mesh);
    ASSERT_TRUE(transport.ok()) << transport.status();
    SessionSettings settings;
    settings.shares = shares;
    settings.timeout = absl::Seconds(30);
    auto backend = CpuBackend::Create(ExactOneThread()).value();
    auto session = StartClusterRoot(model_, settings, backend.get(), transport->get(), &clock_);
    ASSERT_TRUE(session.ok()) << session.status();
    ClusterOptions options;
    options.clock = &clock_;
    ClusterRoot root(session->engine.get(), transport->get(), options);
    const int64_t vocab = session->engine->config().vocab_size;
    std::vector<int32_t> next = {1, 20, 30};
    for (int step = 0; step < kSteps; ++step) {
      auto out = root.ForwardTopK(next, vocab);
      ASSERT_TRUE(out.ok()) << out.status();
      ASSERT_EQ(static_cast<int64_t>(out->candidates.size()), vocab);
      *logits = LogitsFromCandidates(out->candidates, vocab);
      EXPECT_EQ(out->candidates[0].id, out->logits.greedy.back());
      tokens->push_back(out->candidates[0].id);
      next = {out->candidates[0].id};
    }
    EXPECT_TRUE(root.Stop().ok());
    if (shares.size() > 2) EXPECT_TRUE(session->streamed[2]);
    (*transport)->Abort();
  }

  RealClock clock_;
  std::string path_;
  ModelSource model_;
  std::vector<std::unique_ptr<testing::WorkerProcess>> workers_;
};

TEST_P(TcpClusterTest, BitIdenticalToSingleNode) {
  std::vector<int32_t> want_tokens;
  std::vector<float> want_logits;
  RunSingle(&want_tokens, &want_logits);
  const std::vector<std::vector<int>> share_sets = {{1, 1}, {1, 1, 1}, {1, 1, 1, 1}, {2, 1, 3}};
  for (const std::vector<int>& shares : share_sets) {
    SCOPED_TRACE(absl::StrCat("shares ", absl::StrJoin(shares, ",")));
    std::vector<int32_t> tokens;
    std::vector<float> logits;
    RunCluster(shares, &tokens, &logits);
    EXPECT_EQ(tokens, want_tokens);
    EXPECT_TRUE(SameBits(logits, want_logits));
  }
  // The workers served every session and are still up.
  for (auto& w : workers_) {
    EXPECT_NE(w->Log().find("session ended"), std::string::npos) << w->Log();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TcpClusterTest,
                         ::testing::Values(ModelCase{"stories260K", true, DType::kF32},
                                           ModelCase{"synthetic_f32", false, DType::kF32},
                                           ModelCase{"synthetic_q8_0", false, DType::kQ8_0},
                                           ModelCase{"synthetic_q4_0", false, DType::kQ4_0}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace shardlm
