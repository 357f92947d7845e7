// Session setup over the local transport (core/cluster_setup.h): workers
// with the root's file load it, workers without it (or with another file)
// get their slices streamed; the streamed cluster computes the root's
// model; a failing worker's reason reaches the root; a corrupted stream is
// caught by its SHA-256.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backends/cpu/cpu_backend.h"
#include "core/clock.h"
#include "core/cluster_session.h"
#include "core/cluster_setup.h"
#include "core/engine.h"
#include "core/status_macros.h"
#include "core/wire.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<Backend>> ExactBackend(Numerics numerics) {
  BackendOptions o;
  o.threads = 1;
  o.numerics = numerics;
  return CpuBackend::Create(o);
}

ModelSource Model(uint64_t seed, const std::string& name) {
  SyntheticModelSpec spec = testing::SmallShardedModelSpec(DType::kQ8_0);
  spec.seed = seed;
  auto path = testing::WriteSyntheticModelFile(spec, name);
  EXPECT_TRUE(path.ok()) << path.status();
  auto model = OpenModelSource(*path);
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

class ClusterSetupTest : public ::testing::Test {
 protected:
  ClusterSetupTest() : root_model_(Model(5, "root")), other_model_(Model(6, "other")) {}

  // Logits of `tokens` on one node of the root's model.
  std::vector<float> SingleNodeLogits(const std::vector<int32_t>& tokens) {
    auto backend = ExactBackend(Numerics::kExact).value();
    auto engine = Engine::Create(root_model_.file.get(), backend.get(), EngineOptions{}).value();
    return engine->Forward(tokens).value();
  }

  RealClock clock_;
  ModelSource root_model_;
  ModelSource other_model_;
};

TEST_F(ClusterSetupTest, LocalCopyOrStreamedSlicesComputeTheRootsModel) {
  const std::vector<int32_t> tokens = {1, 7, 42};
  const std::vector<float> want = SingleNodeLogits(tokens);
  // Rank 1 has the root's file, rank 2 another model (same shape), rank 3
  // nothing.
  std::vector<bool> streamed;
  std::vector<float> got;
  const absl::Status s = testing::RunLocalRanks(4, [&](Transport* t) -> absl::Status {
    if (t->rank() == 0) {
      SessionSettings settings;
      settings.shares = {1, 2, 1, 1};
      auto backend = ExactBackend(Numerics::kExact).value();
      ASSIGN_OR_RETURN(RootSession session, StartClusterRoot(root_model_, settings,
                                                             backend.get(), t, &clock_));
      streamed = session.streamed;
      ClusterOptions options;
      options.clock = &clock_;
      ClusterRoot root(session.engine.get(), t, options);
      ASSIGN_OR_RETURN(ClusterStep step, root.ForwardTopK(tokens, 0));
      got.assign(want.size(), 0.0f);
      for (const Candidate& c : step.candidates) got[c.id] = c.logit;
      return root.Stop();
    }
    const ModelSource* local = t->rank() == 1 ? &root_model_
                               : t->rank() == 2 ? &other_model_
                                                : nullptr;
    ASSIGN_OR_RETURN(auto session,
                     JoinClusterSession(t, local, ExactBackend, &clock_, absl::Seconds(30)));
    EXPECT_EQ(session->streamed, t->rank() != 1);
    EXPECT_THAT(session->model_name, HasSubstr("root"));
    return RunClusterWorker(session->engine.get(), t, session->cluster);
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(streamed, (std::vector<bool>{false, false, true, true}));
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0);
}

// One session over the given workers (identities into `caches`), every
// worker streamed; returns the root's streamed bytes and checks the logits.
struct StreamedSession {
  int64_t root_sent = 0;
  std::vector<int64_t> kept;      // per rank
  std::vector<int64_t> received;  // per rank
  std::vector<float> logits;
};

TEST_F(ClusterSetupTest, ANextSessionStreamsOnlyTheBytesAWorkerLacks) {
  const std::vector<int32_t> tokens = {3, 9, 27};
  const std::vector<float> want = SingleNodeLogits(tokens);
  StreamedWeights caches[4];  // workers by identity, kept across sessions
  auto run = [&](const ModelSource& model, const std::vector<int>& workers) {
    StreamedSession out;
    out.kept.assign(workers.size() + 1, 0);
    out.received.assign(workers.size() + 1, 0);
    const int world = static_cast<int>(workers.size()) + 1;
    const absl::Status s = testing::RunLocalRanks(world, [&](Transport* t) -> absl::Status {
      if (t->rank() == 0) {
        SessionSettings settings;
        settings.shares.assign(world, 1);
        auto backend = ExactBackend(Numerics::kExact).value();
        ASSIGN_OR_RETURN(RootSession session,
                         StartClusterRoot(model, settings, backend.get(), t, &clock_));
        out.root_sent = session.streamed_bytes;
        ClusterOptions options;
        options.clock = &clock_;
        ClusterRoot root(session.engine.get(), t, options);
        ASSIGN_OR_RETURN(ClusterStep step, root.ForwardTopK(tokens, 0));
        out.logits.assign(want.size(), 0.0f);
        for (const Candidate& c : step.candidates) out.logits[c.id] = c.logit;
        return root.Stop();
      }
      ASSIGN_OR_RETURN(auto session,
                       JoinClusterSession(t, nullptr, ExactBackend, &clock_, absl::Seconds(30),
                                          nullptr, &caches[workers[t->rank() - 1]]));
      out.kept[t->rank()] = session->weight_bytes_kept;
      out.received[t->rank()] = session->weight_bytes_received;
      return RunClusterWorker(session->engine.get(), t, session->cluster);
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  };
  const StreamedSession first = run(root_model_, {1, 2, 3});
  EXPECT_EQ(first.logits, want);
  EXPECT_EQ(first.kept, (std::vector<int64_t>{0, 0, 0, 0}));
  // Worker 2 is lost: workers 1 and 3 keep what they hold of their new,
  // larger slices and receive the rest.
  const StreamedSession second = run(root_model_, {1, 3});
  EXPECT_EQ(second.logits, want);
  EXPECT_GT(second.kept[1], 0);
  EXPECT_GT(second.kept[2], 0);
  EXPECT_LT(second.root_sent, first.root_sent);
  // The held bytes are exactly the new slices': nothing more is kept.
  EXPECT_EQ(caches[1].held().bytes(), static_cast<uint64_t>(second.kept[1] + second.received[1]));
  EXPECT_EQ(caches[3].held().bytes(), static_cast<uint64_t>(second.kept[2] + second.received[2]));
  EXPECT_EQ(second.root_sent, second.received[1] + second.received[2]);
  // The same plan again: nothing to send.
  const StreamedSession third = run(root_model_, {1, 3});
  EXPECT_EQ(third.logits, want);
  EXPECT_EQ(third.root_sent, 0);
  // Another model: the caches start over and everything is streamed.
  const StreamedSession other = run(other_model_, {1, 3});
  EXPECT_EQ(other.kept, (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(other.root_sent, second.root_sent + second.kept[1] + second.kept[2]);
}

TEST_F(ClusterSetupTest, AWorkersFailureReachesTheRootNamingIt) {
  absl::Status root_status;
  const absl::Status s = testing::RunLocalRanks(3, [&](Transport* t) -> absl::Status {
    if (t->rank() == 0) {
      SessionSettings settings;
      settings.shares = {1, 1, 1};
      auto backend = ExactBackend(Numerics::kExact).value();
      root_status = StartClusterRoot(root_model_, settings, backend.get(), t, &clock_).status();
      return absl::OkStatus();
    }
    WorkerBackendFactory broken = [&](Numerics n) -> absl::StatusOr<std::unique_ptr<Backend>> {
      if (t->rank() == 2) return absl::ResourceExhaustedError("out of device memory");
      return ExactBackend(n);
    };
    JoinClusterSession(t, &root_model_, broken, &clock_, absl::Seconds(30)).status().IgnoreError();
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_FALSE(root_status.ok());
  EXPECT_THAT(root_status.message(), HasSubstr("rank 2: out of device memory"));
}

TEST_F(ClusterSetupTest, CorruptedStreamFailsItsHashCheck) {
  absl::Status worker_status;
  std::string reported;
  const absl::Status s = testing::RunLocalRanks(2, [&](Transport* t) -> absl::Status {
    const absl::Time deadline = clock_.Now() + absl::Seconds(30);
    if (t->rank() == 1) {
      worker_status =
          JoinClusterSession(t, nullptr, ExactBackend, &clock_, absl::Seconds(30)).status();
      return absl::OkStatus();
    }
    // A hand-driven root whose digest does not match the bytes it sent.
    wire::SessionSetup setup;
    setup.add_shares(1);
    setup.add_shares(1);
    setup.set_max_batch(8);
    setup.set_numerics("exact");
    setup.set_wire("exact");
    setup.set_algorithm("auto");
    setup.set_timeout_ms(30000);
    setup.set_model_name("root.gguf");
    auto send = [&](uint32_t tag, const google::protobuf::MessageLite& m) {
      const std::string b = m.SerializeAsString();
      return t->Send(1, tag, std::vector<uint8_t>(b.begin(), b.end()), deadline);
    };
    RETURN_IF_ERROR(send(kSetupTag, setup));
    ASSIGN_OR_RETURN(std::vector<uint8_t> accept, t->Recv(1, kSetupTag, deadline));
    const GgufFile& file = *root_model_.file;
    const uint8_t* base = file.tensors()[0].data - file.data_offset() - file.tensors()[0].offset;
    wire::WeightHeader header;
    header.set_gguf_header(base, file.data_offset());
    header.set_file_size(file.file_size());
    header.set_total_bytes(4);
    RETURN_IF_ERROR(send(kWeightsTag, header));
    std::vector<uint8_t> record(12 + 4, 0);
    const uint64_t offset = file.data_offset();
    const uint32_t len = 4;
    std::memcpy(&record[0], &offset, 8);
    std::memcpy(&record[8], &len, 4);
    RETURN_IF_ERROR(t->Send(1, kWeightsTag, record, deadline));
    wire::WeightDone done;
    done.set_sha256(std::string(32, 'x'));
    RETURN_IF_ERROR(send(kWeightsTag, done));
    ASSIGN_OR_RETURN(std::vector<uint8_t> ready, t->Recv(1, kSetupTag, deadline));
    wire::SessionReady r;
    r.ParseFromArray(ready.data(), static_cast<int>(ready.size()));
    reported = r.error();
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(worker_status.code(), absl::StatusCode::kDataLoss) << worker_status;
  EXPECT_THAT(worker_status.message(), HasSubstr("SHA-256"));
  EXPECT_THAT(reported, HasSubstr("SHA-256"));
}

TEST_F(ClusterSetupTest, InconsistentSettingsAreRefused) {
  absl::Status root_status;
  const absl::Status s = testing::RunLocalRanks(2, [&](Transport* t) -> absl::Status {
    if (t->rank() == 0) {
      SessionSettings settings;
      settings.shares = {1, 1};
      settings.numerics = Numerics::kExact;
      settings.wire = WireFormat::kQ8_0;  // exact numerics needs the exact wire
      auto backend = ExactBackend(Numerics::kExact).value();
      root_status = StartClusterRoot(root_model_, settings, backend.get(), t, &clock_).status();
      return absl::OkStatus();
    }
    JoinClusterSession(t, &root_model_, ExactBackend, &clock_, absl::Seconds(30))
        .status()
        .IgnoreError();
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_FALSE(root_status.ok());
  EXPECT_THAT(root_status.message(), HasSubstr("wire format exact"));
}

}  // namespace
}  // namespace shardlm
