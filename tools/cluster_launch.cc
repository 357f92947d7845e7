#include "tools/cluster_launch.h"

#include <algorithm>
#include <cstdio>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/cluster_setup.h"
#include "core/shard_plan.h"
#include "core/sharded_engine.h"
#include "core/status_macros.h"
#include "gflags/gflags.h"
#include "tools/backend_flags.h"
#include "tools/progress.h"
#include "tools/shared_flags.h"
#include "transport/collectives.h"
#include "transport/local/local_cluster.h"
#include "transport/tcp/handshake.h"
#include "transport/tcp/mesh.h"

DEFINE_int32(nodes, 1, "Nodes of the tensor-parallel cluster (1: no cluster)");
DEFINE_string(transport, "local",
              "How the nodes talk: local (threads of this process) or tcp (--workers)");
DEFINE_string(shares, "", "Relative work of each node, e.g. 1,1,2 (implies --nodes)");
DEFINE_string(workers, "",
              "Worker addresses HOST:PORT,... for --transport tcp (each runs `shardlm worker`); "
              "the cluster is this process plus the workers");
DEFINE_string(wire, "auto",
              "All-reduce wire format: exact (int64 fixed point; --numerics exact), f32, f16, "
              "q8_0 (--numerics fast); auto: exact or q8_0 to match --numerics");
DEFINE_string(allreduce, "auto", "All-reduce algorithm: auto, ring or direct");
DEFINE_int32(cluster_timeout_s, 60, "Seconds any cluster step may take before it fails");

namespace shardlm::cli {
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
  absl::Status Stop() override { return cluster_->Stop(); }

 private:
  std::unique_ptr<LocalCluster> cluster_;
};

// Rank 0 of a TCP cluster; the workers are other processes.
class TcpLaunched : public LaunchedCluster {
 public:
  TcpLaunched(std::unique_ptr<tcp::TcpTransport> transport, std::unique_ptr<Backend> backend,
              ModelSource model, RootSession session, const ClusterOptions& options)
      : transport_(std::move(transport)), backend_(std::move(backend)),
        model_(std::move(model)), session_(std::move(session)),
        root_(session_.engine.get(), transport_.get(), options) {}
  ~TcpLaunched() override { Stop().IgnoreError(); }
  ClusterRoot* root() override { return &root_; }
  absl::Status Stop() override {
    if (stopped_) return stop_status_;
    stopped_ = true;
    stop_status_ = root_.Stop();
    transport_->Abort();
    return stop_status_;
  }
  void set_describe(std::string d, int nodes) {
    describe_ = std::move(d);
    nodes_ = nodes;
  }

 private:
  std::unique_ptr<tcp::TcpTransport> transport_;
  std::unique_ptr<Backend> backend_;
  ModelSource model_;
  RootSession session_;
  ClusterRoot root_;
  bool stopped_ = false;
  absl::Status stop_status_;
};

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

absl::StatusOr<std::unique_ptr<LaunchedCluster>> LaunchTcp(const std::string& path,
                                                           const std::vector<int>& shares,
                                                           const BackendOptions& backend_options,
                                                           const SessionSettings& settings,
                                                           RealClock* clock) {
  ASSIGN_OR_RETURN(const std::vector<tcp::HostPort> workers,
                   tcp::ParseHostPortList(FLAGS_workers));
  tcp::MeshOptions mesh;
  mesh.clock = clock;
  mesh.setup_timeout = settings.timeout;
  if (!SecretFileFlag().empty()) {
    ASSIGN_OR_RETURN(mesh.secret, tcp::ReadSecretFile(SecretFileFlag()));
  }
  ModelSource model;
  {
    ProgressLine progress(absl::StrCat("hashing ", path));
    ASSIGN_OR_RETURN(model, OpenModelSource(path, [&](uint64_t done, uint64_t total) {
                       progress.Update(done, total);
                     }));
    progress.Clear();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<tcp::TcpTransport> transport,
                   tcp::DialCluster(workers, mesh));
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, CreateBackend(BackendNameFromFlags(), backend_options));
  std::vector<std::unique_ptr<ProgressLine>> bars(shares.size());
  absl::StatusOr<RootSession> session = StartClusterRoot(
      model, settings, backend.get(), transport.get(), clock,
      [&](int rank, uint64_t done, uint64_t total) {
        auto& bar = bars[rank];
        if (bar == nullptr) {
          bar = std::make_unique<ProgressLine>(
              absl::StrCat("sending weights to rank ", rank, " (", workers[rank - 1].host, ":",
                           workers[rank - 1].port, ")"));
        }
        bar->Update(done, total);
        if (done == total) bar->Finish(absl::StrCat("sent rank ", rank, " its weights: ",
                                                    HumanBytes(total)));
      });
  for (auto& bar : bars) {
    if (bar != nullptr) bar->Clear();
  }
  if (!session.ok()) {
    transport->Abort();
    return session.status();
  }
  std::string describe = absl::StrCat(backend->Describe(), " | nodes ", shares.size(), " (shares ",
                                      FormatShares(shares), ") over tcp, wire ",
                                      WireFormatName(settings.wire));
  ClusterOptions options;
  options.clock = clock;
  options.timeout = settings.timeout;
  auto launched = std::make_unique<TcpLaunched>(std::move(transport), std::move(backend),
                                                std::move(model), *std::move(session), options);
  launched->set_describe(std::move(describe), static_cast<int>(shares.size()));
  return launched;
}

}  // namespace

absl::StatusOr<std::vector<int>> ClusterSharesFromFlags() {
  const bool tcp = FLAGS_transport == "tcp";
  if (FLAGS_transport == "mpi") {
    return absl::UnimplementedError("--transport mpi is not available yet (use local or tcp)");
  }
  if (!tcp && FLAGS_transport != "local") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --transport '", FLAGS_transport, "' (local or tcp)"));
  }
  if (tcp != !FLAGS_workers.empty()) {
    return absl::InvalidArgumentError(tcp ? "--transport tcp needs --workers HOST:PORT,..."
                                          : "--workers needs --transport tcp");
  }
  int nodes = FLAGS_nodes;
  if (tcp) {
    ASSIGN_OR_RETURN(const auto workers, tcp::ParseHostPortList(FLAGS_workers));
    nodes = static_cast<int>(workers.size()) + 1;
    if (FlagGiven("nodes") && FLAGS_nodes != nodes) {
      return absl::InvalidArgumentError(absl::StrCat("--nodes ", FLAGS_nodes, " but --workers names ",
                                                     nodes - 1, " workers (plus this root)"));
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
  if ((FlagGiven("nodes") || tcp) && static_cast<int>(shares->size()) != nodes) {
    return absl::InvalidArgumentError(absl::StrCat("--shares ", FLAGS_shares, " gives ",
                                                   shares->size(), " nodes but the cluster has ",
                                                   nodes));
  }
  return shares;
}

absl::StatusOr<std::unique_ptr<LaunchedCluster>> LaunchClusterFromFlags(
    const std::string& path, const GgufFile& file, const std::vector<int>& shares,
    BackendOptions backend_options, int64_t max_seq_len, RealClock* clock) {
  if (FLAGS_cluster_timeout_s < 1) {
    return absl::InvalidArgumentError("--cluster-timeout-s must be >= 1");
  }
  SessionSettings settings;
  settings.shares = shares;
  settings.numerics = backend_options.numerics;
  ASSIGN_OR_RETURN(settings.wire, WireFromFlags(backend_options.numerics));
  ASSIGN_OR_RETURN(settings.algorithm, AlgorithmFromFlags());
  settings.timeout = absl::Seconds(FLAGS_cluster_timeout_s);
  settings.max_seq_len = max_seq_len;
  if (FLAGS_transport == "tcp") {
    return LaunchTcp(path, shares, backend_options, settings, clock);
  }
  // The local nodes share this machine's cores (--threads 0: all of them).
  const int n = static_cast<int>(shares.size());
  const int total = backend_options.threads > 0
                        ? backend_options.threads
                        : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  backend_options.threads = std::max(1, total / n);
  return LaunchLocal(file, shares, backend_options, settings, clock);
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
