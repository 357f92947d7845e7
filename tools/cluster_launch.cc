#include "tools/cluster_launch.h"
#include "tools/cluster_launch_internal.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <functional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/cluster_setup.h"
#include "core/recovering_cluster.h"
#include "core/shard_plan.h"
#include "core/sharded_engine.h"
#include "core/status_macros.h"
#include "gflags/gflags.h"
#include "tools/backend_flags.h"
#include "tools/cli.h"
#include "tools/progress.h"
#include "tools/shared_flags.h"
#include "transport/collectives.h"
#include "transport/local/local_cluster.h"
#include "transport/tcp/handshake.h"
#include "transport/tcp/mesh.h"

DEFINE_int32(nodes, 1, "Nodes of the tensor-parallel cluster (1: no cluster)");
DEFINE_string(transport, "local",
              "How the nodes talk: local (threads of this process), tcp (--workers) or mpi "
              "(run under mpirun or srun: every rank runs this command, rank 0 is the root)");
DEFINE_string(shares, "", "Relative work of each node, e.g. 1,1,2 (implies --nodes)");
DEFINE_string(workers, "",
              "Worker addresses HOST:PORT,... for --transport tcp (each runs `shardlm worker`); "
              "the cluster is this process plus the workers");
DEFINE_string(wire, "auto",
              "All-reduce wire format: exact (int64 fixed point; --numerics exact), f32, f16, "
              "q8_0 (--numerics fast); auto: exact or q8_0 to match --numerics");
DEFINE_string(allreduce, "auto", "All-reduce algorithm: auto, ring or direct");
DEFINE_int32(cluster_timeout_s, 60,
             "Seconds any cluster step may take before it fails (a backstop for a node that "
             "answers heartbeats but never finishes)");
DEFINE_double(failure_timeout, 3,
              "--transport tcp: seconds a node may go silent (no data, no heartbeat) before it is "
              "declared dead and the cluster recovers without it; 0: no heartbeats");
DEFINE_string(record, "",
              "--transport tcp or mpi: record what the root does on its transport, session by "
              "session, and where the run failed, into FILE (replay: shardlm sim --replay FILE)");
DEFINE_bool(local_weights, false,
            "--transport mpi: every rank reads its own copy of --model (used when its SHA-256 "
            "equals rank 0's) instead of receiving its slices from rank 0");

namespace shardlm::cli {

// Shared with tcp_launch.cc (tools/cluster_launch_internal.h).
absl::StatusOr<ModelSource> HashModel(const std::string& path,
                                      std::shared_ptr<const GgufFile> file) {
  ProgressLine progress(absl::StrCat("hashing ", path));
  absl::StatusOr<ModelSource> model =
      ModelSourceFromFile(path, std::move(file), [&](uint64_t done, uint64_t total) {
        progress.Update(done, total);
      });
  progress.Clear();
  return model;
}

std::unique_ptr<RunRecorder> RecorderFromFlags(const ModelSource& model,
                                               const SessionSettings& settings) {
  if (FLAGS_record.empty()) return nullptr;
  record::Recording header;
  header.set_model_path(model.path);
  header.set_model_sha256(model.sha256);
  header.set_nodes(static_cast<int>(settings.shares.size()));
  for (int s : settings.shares) header.add_shares(s);
  header.set_numerics(NumericsName(settings.numerics));
  header.set_wire(WireFormatName(settings.wire));
  header.set_algorithm(AllReduceAlgorithmName(settings.algorithm));
  header.set_transport(FLAGS_transport);
  return std::make_unique<RunRecorder>(std::move(header));
}

WeightBars::~WeightBars() {
  for (auto& [rank, bar] : bars_) bar->Clear();
}

WeightProgress WeightBars::Callback() {
  return [this](int rank, uint64_t done, uint64_t total) {
    auto& bar = bars_[rank];
    if (bar == nullptr) {
      bar = std::make_unique<ProgressLine>(absl::StrCat("sending weights to ", rank_name_(rank)));
    }
    bar->Update(done, total);
    if (done == total) {
      bar->Finish(absl::StrCat("sent rank ", rank, " its weights: ", HumanBytes(total)));
    }
  };
}

namespace {

absl::StatusOr<WireFormat> WireFromFlags(Numerics numerics) {
  if (FLAGS_wire == "auto") {
    return numerics == Numerics::kExact ? WireFormat::kExact : WireFormat::kQ8_0;
  }
  absl::StatusOr<WireFormat> wire = ParseWireFormat(FLAGS_wire);
  if (!wire.ok()) return absl::InvalidArgumentError(absl::StrCat("--wire: ", wire.status().message()));
  if ((numerics == Numerics::kExact) != (*wire == WireFormat::kExact)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--wire ", FLAGS_wire, " does not go with --numerics ", NumericsName(numerics),
        " (exact numerics needs --wire exact; fast takes f32, f16 or q8_0)"));
  }
  return wire;
}

absl::StatusOr<AllReduceAlgorithm> AlgorithmFromFlags() {
  absl::StatusOr<AllReduceAlgorithm> a = ParseAllReduceAlgorithm(FLAGS_allreduce);
  if (!a.ok()) return absl::InvalidArgumentError(absl::StrCat("--allreduce: ", a.status().message()));
  return a;
}

bool FlagGiven(const char* name) { return !gflags::GetCommandLineFlagInfoOrDie(name).is_default; }

// An in-process cluster (--transport local).
class LocalLaunched : public LaunchedCluster {
 public:
  LocalLaunched(std::unique_ptr<LocalCluster> cluster, std::string describe, int nodes)
      : cluster_(std::move(cluster)) {
    describe_ = std::move(describe);
    nodes_ = nodes;
  }
  ClusterRoot* root() override { return cluster_->root(); }
  TokenStepper* stepper() override { return &stepper_; }
  absl::Status Stop() override { return cluster_->Stop(); }

 private:
  std::unique_ptr<LocalCluster> cluster_;
  ClusterStepper stepper_{cluster_->root()};
};

// Rank 0 of a cluster whose workers are other processes (tcp, mpi).
class RemoteLaunched : public LaunchedCluster {
 public:
  // `shutdown` runs after the root's Stop (tcp: close every connection).
  // `observed` (may be null) wraps `transport` for --record.
  RemoteLaunched(std::unique_ptr<Transport> transport, std::unique_ptr<Transport> observed,
                 std::function<void()> shutdown, std::unique_ptr<Backend> backend,
                 ModelSource model, RootSession session, const ClusterOptions& options)
      : transport_(std::move(transport)), observed_(std::move(observed)),
        shutdown_(std::move(shutdown)), backend_(std::move(backend)), model_(std::move(model)),
        session_(std::move(session)),
        root_(session_.engine.get(), observed_ ? observed_.get() : transport_.get(), options) {}
  ~RemoteLaunched() override { Stop().IgnoreError(); }
  ClusterRoot* root() override { return &root_; }
  TokenStepper* stepper() override { return &stepper_; }
  absl::Status Stop() override {
    if (stopped_) return stop_status_;
    stopped_ = true;
    stop_status_ = root_.Stop();
    if (shutdown_) shutdown_();
    return stop_status_;
  }

 private:
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Transport> observed_;
  std::function<void()> shutdown_;
  std::unique_ptr<Backend> backend_;
  ModelSource model_;
  RootSession session_;
  ClusterRoot root_;
  ClusterStepper stepper_{&root_};
  bool stopped_ = false;
  absl::Status stop_status_;
};

// Rank 0's side over the connected `transport`: sets up every worker
// (weights streamed with progress bars) and wraps the session. `over`
// names the transport in describe(); `shutdown` as for RemoteLaunched.
absl::StatusOr<std::unique_ptr<LaunchedCluster>> StartRemoteRoot(
    ModelSource model, std::unique_ptr<Transport> transport, std::function<void()> shutdown,
    const RankName& rank_name, const std::string& over, const BackendOptions& backend_options,
    const SessionSettings& settings, RealClock* clock) {
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                   CreateBackend(BackendNameFromFlags(), backend_options));
  const size_t n = settings.shares.size();
  std::unique_ptr<RunRecorder> recorder = RecorderFromFlags(model, settings);
  std::unique_ptr<Transport> observed;
  if (recorder != nullptr) {
    std::vector<int> workers;
    for (size_t r = 1; r < n; ++r) workers.push_back(static_cast<int>(r));
    observed = recorder->Wrap(transport.get(), workers);
  }
  absl::StatusOr<RootSession> session;
  {
    WeightBars bars(rank_name);
    session = StartClusterRoot(model, settings, backend.get(),
                               observed ? observed.get() : transport.get(), clock,
                               bars.Callback());
  }
  if (!session.ok()) {
    if (shutdown) shutdown();
    return session.status();
  }
  std::string describe = absl::StrCat(backend->Describe(), " | nodes ", n, " (shares ",
                                      FormatShares(settings.shares), ") over ", over, ", wire ",
                                      WireFormatName(settings.wire));
  ClusterOptions options;
  options.clock = clock;
  options.timeout = settings.timeout;
  if (recorder != nullptr) recorder->set_streamed(session->streamed);
  auto launched = std::make_unique<RemoteLaunched>(
      std::move(transport), std::move(observed), std::move(shutdown), std::move(backend),
      std::move(model), *std::move(session), options);
  launched->set_describe(std::move(describe), static_cast<int>(n));
  launched->set_recorder(std::move(recorder));
  return launched;
}

absl::StatusOr<std::unique_ptr<LaunchedCluster>> LaunchLocal(const GgufFile& file,
                                                             const std::vector<int>& shares,
                                                             const BackendOptions& backend_options,
                                                             const SessionSettings& settings,
                                                             RealClock* clock) {
  ASSIGN_OR_RETURN(const LlamaConfig config, LlamaConfigFromGguf(file));
  ASSIGN_OR_RETURN(const PlanWeightInfo info, PlanWeightInfo::FromGguf(file));
  absl::StatusOr<ShardPlan> plan = ShardPlan::Create(config, shares, info);
  if (!plan.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot split the model over ", shares.size(),
                                                   " nodes: ", plan.status().message()));
  }
  const ShardedEngineOptions engine_options = SessionEngineOptions(settings, clock);
  ClusterOptions cluster_options;
  cluster_options.clock = clock;
  cluster_options.timeout = settings.timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<LocalCluster> cluster,
                   LocalCluster::Start(
                       &file, *plan, [&](int) { return CreateBackend(BackendNameFromFlags(), backend_options); },
                       engine_options, cluster_options));
  std::string describe = absl::StrCat(cluster->backend(0)->Describe(), " | nodes ", shares.size(),
                                      " (shares ", FormatShares(shares), ") over local, wire ",
                                      WireFormatName(settings.wire));
  return std::make_unique<LocalLaunched>(std::move(cluster), std::move(describe),
                                         static_cast<int>(shares.size()));
}

// Rank 0 of an MPI job; ranks > 0 are in ClusterProcess::ServeAsWorker.
absl::StatusOr<std::unique_ptr<LaunchedCluster>> LaunchMpi(const std::string& path,
                                                           std::shared_ptr<const GgufFile> file,
                                                           const BackendOptions& backend_options,
                                                           const SessionSettings& settings,
                                                           RealClock* clock,
                                                           mpi::MpiSession* session) {
  ASSIGN_OR_RETURN(ModelSource model, HashModel(path, std::move(file)));
  ASSIGN_OR_RETURN(std::unique_ptr<Transport> transport, session->CreateTransport(clock));
  return StartRemoteRoot(
      std::move(model), std::move(transport), nullptr,
      [](int r) { return absl::StrCat("rank ", r); },
      absl::StrCat("mpi (", session->thread_level(), ")"), backend_options, settings, clock);
}

}  // namespace

absl::Status LaunchedCluster::SaveRecording() const {
  return recorder_ == nullptr ? absl::OkStatus() : recorder_->Save(FLAGS_record);
}

absl::StatusOr<std::unique_ptr<ClusterProcess>> ClusterProcess::FromFlags() {
  std::unique_ptr<mpi::MpiSession> session;
  if (FLAGS_transport == "mpi") {
    ASSIGN_OR_RETURN(session, mpi::MpiSession::Start());
  }
  return std::unique_ptr<ClusterProcess>(new ClusterProcess(std::move(session)));
}

int ClusterProcess::Finish(const char* command, const absl::Status& status) {
  if (status.ok()) return 0;
  const int code = Fail(command, status);
  if (mpi_ != nullptr && mpi_->world_size() > 1) {
    std::fflush(stdout);
    std::fflush(stderr);
    // mpirun forwards a rank's output through a pipe and, once MPI_Abort
    // reaches it, kills the job without always draining that pipe: under
    // load the error line above was lost. Give the forwarding a moment.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    mpi_->Abort(code);
  }
  return code;
}

absl::Status ClusterProcess::ServeAsWorkerImpl() {
  ASSIGN_OR_RETURN(const BackendOptions backend_options, BackendOptionsFromFlags());
  RealClock clock;
  std::unique_ptr<ModelSource> local;
  if (FLAGS_local_weights) {
    // A copy that is missing or differs from the root's: the root streams.
    absl::StatusOr<std::string> path = ResolveModelPath(ModelFlag());
    absl::StatusOr<ModelSource> model =
        path.ok() ? OpenModelSource(*path, nullptr, ModelMemoryFlag())
                  : absl::StatusOr<ModelSource>(path.status());
    if (model.ok()) {
      local = std::make_unique<ModelSource>(*std::move(model));
    } else {
      std::fprintf(stderr, "shardlm: rank %d: --local-weights: %s; receiving the weights from "
                   "rank 0\n", mpi_->rank(), std::string(model.status().message()).c_str());
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Transport> transport, mpi_->CreateTransport(&clock));
  const WorkerBackendFactory make_backend = [&](Numerics numerics) {
    BackendOptions o = backend_options;
    o.numerics = numerics;
    return CreateBackend(BackendNameFromFlags(), o);
  };
  // The root hashes the model before its first message.
  ASSIGN_OR_RETURN(std::unique_ptr<WorkerSession> session,
                   JoinClusterSession(transport.get(), local.get(), make_backend, &clock,
                                      absl::Seconds(FLAGS_cluster_timeout_s) +
                                          absl::Minutes(10)));
  // A root that stops sending (killed, or hung) ends this worker too.
  session->cluster.idle_timeout = session->cluster.timeout;
  return RunClusterWorker(session->engine.get(), transport.get(), session->cluster);
}

int ClusterProcess::ServeAsWorker(const char* command) {
  // Flag errors are the root's to report (every rank has the same flags).
  absl::Status s = ClusterSharesFromFlags(*this).status();
  if (s.ok()) {
    s = ServeAsWorkerImpl();
    if (!s.ok()) Fail(absl::StrCat(command, " rank ", mpi_->rank()), s);
  }
  // MPI_Finalize (in ~MpiSession) returns once the root finalises too; a
  // failing root aborts the job instead.
  return s.ok() ? 0 : 1;
}

absl::StatusOr<std::vector<int>> ClusterSharesFromFlags(const ClusterProcess& process) {
  const bool tcp = FLAGS_transport == "tcp";
  const bool mpi = FLAGS_transport == "mpi";
  if (!tcp && !mpi && FLAGS_transport != "local") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --transport '", FLAGS_transport, "' (local, tcp or mpi)"));
  }
  if (tcp != !FLAGS_workers.empty()) {
    return absl::InvalidArgumentError(tcp ? "--transport tcp needs --workers HOST:PORT,..."
                                          : "--workers needs --transport tcp");
  }
  if (FLAGS_local_weights && !mpi) {
    return absl::InvalidArgumentError(
        "--local-weights goes with --transport mpi (tcp workers read their own --model)");
  }
  if (!FLAGS_record.empty() && !tcp && !mpi) {
    return absl::InvalidArgumentError("--record goes with --transport tcp or mpi");
  }
  int nodes = FLAGS_nodes;
  const char* given_by = nullptr;
  if (tcp) {
    ASSIGN_OR_RETURN(const auto workers, tcp::ParseHostPortList(FLAGS_workers));
    nodes = static_cast<int>(workers.size()) + 1;
    given_by = "--workers names";
    if (FlagGiven("nodes") && FLAGS_nodes != nodes) {
      return absl::InvalidArgumentError(absl::StrCat("--nodes ", FLAGS_nodes, " but --workers names ",
                                                     nodes - 1, " workers (plus this root)"));
    }
  }
  if (mpi) {
    if (process.mpi() == nullptr) return absl::InternalError("--transport mpi without MPI");
    nodes = process.mpi()->world_size();
    given_by = "the MPI job has";
    if (nodes < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--transport mpi needs 2 or more MPI ranks, this job has ", nodes,
          " (start it with mpirun -np N or srun --ntasks N)"));
    }
    if (FlagGiven("nodes") && FLAGS_nodes != nodes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--nodes ", FLAGS_nodes, " but the MPI job has ", nodes, " ranks (mpirun -np)"));
    }
  }
  if (nodes < 1 || nodes > kMaxPlanNodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--nodes must be in [1, ", kMaxPlanNodes, "], got ", nodes));
  }
  if (FLAGS_shares.empty()) return std::vector<int>(nodes, 1);
  absl::StatusOr<std::vector<int>> shares = ParseShares(FLAGS_shares);
  if (!shares.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--shares: ", shares.status().message()));
  }
  if ((FlagGiven("nodes") || tcp || mpi) && static_cast<int>(shares->size()) != nodes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shares ", FLAGS_shares, " gives ", shares->size(), " nodes but ",
        given_by != nullptr ? given_by : "the cluster has", " ", nodes,
        mpi ? " ranks (mpirun -np)" : ""));
  }
  return shares;
}

absl::StatusOr<std::unique_ptr<LaunchedCluster>> LaunchClusterFromFlags(
    const std::string& path, std::shared_ptr<const GgufFile> file, const std::vector<int>& shares,
    BackendOptions backend_options, int64_t max_seq_len, RealClock* clock,
    ClusterProcess* process) {
  if (FLAGS_cluster_timeout_s < 1) {
    return absl::InvalidArgumentError("--cluster-timeout-s must be >= 1");
  }
  if (!(FLAGS_failure_timeout >= 0) || FLAGS_failure_timeout > 3600) {
    return absl::InvalidArgumentError("--failure-timeout must be between 0 and 3600 seconds");
  }
  SessionSettings settings;
  settings.shares = shares;
  settings.numerics = backend_options.numerics;
  ASSIGN_OR_RETURN(settings.wire, WireFromFlags(backend_options.numerics));
  ASSIGN_OR_RETURN(settings.algorithm, AlgorithmFromFlags());
  settings.timeout = absl::Seconds(FLAGS_cluster_timeout_s);
  settings.max_seq_len = max_seq_len;
  if (FLAGS_transport == "tcp") {
    return LaunchTcp(path, file, backend_options, settings, clock);
  }
  if (FLAGS_transport == "mpi") {
    if (process == nullptr || process->mpi() == nullptr || process->is_worker()) {
      return absl::InternalError("--transport mpi: launching from a process that is not rank 0");
    }
    return LaunchMpi(path, file, backend_options, settings, clock, process->mpi());
  }
  // The local nodes share this machine's cores (--threads 0: all of them).
  const int n = static_cast<int>(shares.size());
  const int total = backend_options.threads > 0
                        ? backend_options.threads
                        : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  backend_options.threads = std::max(1, total / n);
  return LaunchLocal(*file, shares, backend_options, settings, clock);
}

void PrintTrafficTable(const std::vector<NodeTraffic>& before,
                       const std::vector<NodeTraffic>& after, int64_t tokens, const char* what) {
  if (tokens <= 0) return;
  std::fprintf(stderr, "%s, per token (%lld tokens):\n", what, static_cast<long long>(tokens));
  std::fprintf(stderr, "  node  compute ms  sync ms  sent bytes  received bytes\n");
  for (size_t r = 0; r < after.size() && r < before.size(); ++r) {
    const double t = static_cast<double>(tokens);
    std::fprintf(stderr, "  %4zu  %10.2f  %7.2f  %10.0f  %14.0f\n", r,
                 absl::ToDoubleMilliseconds(after[r].compute - before[r].compute) / t,
                 absl::ToDoubleMilliseconds(after[r].sync - before[r].sync) / t,
                 (after[r].bytes_sent - before[r].bytes_sent) / t,
                 (after[r].bytes_received - before[r].bytes_received) / t);
  }
}

}  // namespace shardlm::cli
