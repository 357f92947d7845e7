// Starting a tensor-parallel session over an already connected Transport
// (any transport: tcp, mpi, simulated): the root tells every worker what to
// load (wire::SessionSetup), streams its weight slices to workers that have
// no copy of the model (each checked end to end with SHA-256), and waits
// until every rank's ShardedEngine is loaded. Workers with their own copy
// load from it after checking that its SHA-256 equals the root's.
//
// Every failure on one side reaches the other as a message naming the rank
// and the cause ("rank 2: model file differs ..."), never as a silent wait:
// each step is bounded by the session timeout.
#ifndef SHARDLM_CORE_CLUSTER_SETUP_H_
#define SHARDLM_CORE_CLUSTER_SETUP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/cluster_session.h"
#include "core/gguf.h"
#include "core/weight_cache.h"
#include "core/shard_plan.h"
#include "core/sharded_engine.h"
#include "core/transport.h"

namespace shardlm {

// Transport tags of the session setup; distinct from the engine's and the
// cluster loop's (ShardedEngineOptions::tag, ClusterOptions).
inline constexpr uint32_t kSetupTag = 0x5353;
inline constexpr uint32_t kWeightsTag = 0x5357;

// How the cluster runs; the root decides, the workers follow.
struct SessionSettings {
  std::vector<int> shares;  // one per rank
  int64_t max_seq_len = 0;
  int64_t max_batch = 64;
  Numerics numerics = Numerics::kExact;
  WireFormat wire = WireFormat::kExact;
  AllReduceAlgorithm algorithm = AllReduceAlgorithm::kAuto;
  // Bound on every step of setup and on every collective afterwards.
  absl::Duration timeout = absl::Seconds(60);
};

// The engine options every rank derives from `settings`.
ShardedEngineOptions SessionEngineOptions(const SessionSettings& settings, Clock* clock);

// A model file and its identity.
struct ModelSource {
  std::shared_ptr<const GgufFile> file;
  std::string path;
  std::string sha256;  // raw 32 bytes of the whole file
};

// Opens `path` (a GGUF file or a Hugging Face folder, core/model_loader.h)
// and hashes it (`progress`: bytes hashed, total).
absl::StatusOr<ModelSource> OpenModelSource(
    const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress = nullptr,
    FileMemory memory = FileMemory::kMap);

// The same for a model already opened from `path`.
absl::StatusOr<ModelSource> ModelSourceFromFile(
    const std::string& path, std::shared_ptr<const GgufFile> file,
    const std::function<void(uint64_t, uint64_t)>& progress = nullptr);

// What the root learns while starting a session.
struct RootSession {
  std::unique_ptr<ShardedEngine> engine;  // rank 0's
  std::vector<std::string> backends;      // per rank, Backend::Describe()
  std::vector<bool> streamed;             // per rank: weights came from the root
  int64_t streamed_bytes = 0;             // weight bytes the root sent, all ranks
};

// Called while weights stream: (rank, bytes sent, bytes to send).
using WeightProgress = std::function<void(int rank, uint64_t done, uint64_t total)>;

// The root's side, on rank 0 of `transport`: sets up every worker, then
// loads rank 0's engine on `backend` (which must outlive it, as must
// `model.file` and `transport`). Errors name the failing rank.
absl::StatusOr<RootSession> StartClusterRoot(const ModelSource& model,
                                             const SessionSettings& settings, Backend* backend,
                                             Transport* transport, Clock* clock,
                                             const WeightProgress& progress = nullptr);

// Makes a worker's backend for the numerics the root asked for.
using WorkerBackendFactory = std::function<absl::StatusOr<std::unique_ptr<Backend>>(Numerics)>;

// A worker's loaded session: run RunClusterWorker(engine, transport,
// cluster) next.
struct WorkerSession {
  std::shared_ptr<const GgufFile> file;  // the local model or the streamed image
  std::unique_ptr<Backend> backend;
  std::unique_ptr<ShardedEngine> engine;
  ClusterOptions cluster;
  bool streamed = false;
  int64_t weight_bytes_received = 0;  // streamed by the root for this session
  int64_t weight_bytes_kept = 0;      // held from an earlier session instead
  std::string model_name;  // as the root named it
};

// A worker's side, on rank > 0 of `transport`: receives the setup, loads
// its slices from `local` (may be null; used only when its hash matches the
// root's) or from the root, and reports ready. `setup_timeout` bounds the
// wait for the root's first message.
// `plan_hook` (tests and the simulator only) may alter the plan this
// worker loads, to inject a sharding bug. With `cache` (may be null; must
// outlive the session), streamed weights are kept for the next session,
// which then receives only the bytes it lacks.
absl::StatusOr<std::unique_ptr<WorkerSession>> JoinClusterSession(
    Transport* transport, const ModelSource* local, const WorkerBackendFactory& make_backend,
    Clock* clock, absl::Duration setup_timeout,
    const std::function<ShardPlan(const ShardPlan&)>& plan_hook = nullptr,
    StreamedWeights* cache = nullptr);

}  // namespace shardlm

#endif  // SHARDLM_CORE_CLUSTER_SETUP_H_
