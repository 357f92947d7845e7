// --transport tcp: the root of a cluster of `shardlm worker` processes,
// recovering from lost workers (a RecoveringCluster over TCP sessions).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/recovering_cluster.h"
#include "core/status_macros.h"
#include "gflags/gflags.h"
#include "tools/backend_flags.h"
#include "tools/cluster_launch_internal.h"
#include "tools/shared_flags.h"
#include "transport/collectives.h"
#include "transport/tcp/handshake.h"
#include "transport/tcp/mesh.h"
#include "transport/tcp/socket.h"

DECLARE_string(workers);
DECLARE_double(failure_timeout);

namespace shardlm::cli {
namespace {

// One TCP session: rank 0's transport, engine and loop.
class TcpSession : public ClusterSessionHandle {
 public:
  // `observed` (may be null) wraps `transport` for --record.
  TcpSession(std::unique_ptr<tcp::TcpTransport> transport, std::unique_ptr<Transport> observed,
             RootSession session, const ClusterOptions& options)
      : transport_(std::move(transport)), observed_(std::move(observed)),
        session_(std::move(session)),
        root_(session_.engine.get(), observed_ ? observed_.get() : transport_.get(), options) {}
  ~TcpSession() override { transport_->Abort(); }
  ClusterRoot* root() override { return &root_; }
  int nodes() const override { return transport_->world_size(); }
  int64_t weight_bytes() const override { return session_.streamed_bytes; }
  void Abort() override { transport_->Abort(); }
  absl::Status Stop() override {
    const absl::Status s = root_.Stop();
    transport_->Abort();
    return s;
  }

 private:
  std::unique_ptr<tcp::TcpTransport> transport_;
  std::unique_ptr<Transport> observed_;
  RootSession session_;
  ClusterRoot root_;
};

// Rank 0 of a TCP cluster of `shardlm worker` processes. A lost worker is
// recovered from: the next session leaves it out (and takes back any worker
// that answers again).
class TcpLaunched : public LaunchedCluster {
 public:
  TcpLaunched(std::vector<tcp::HostPort> workers, tcp::MeshOptions mesh, ModelSource model,
              std::unique_ptr<Backend> backend, SessionSettings settings, RealClock* clock)
      : workers_(std::move(workers)), mesh_(std::move(mesh)), model_(std::move(model)),
        backend_(std::move(backend)), settings_(std::move(settings)), clock_(clock),
        cluster_([this] { return NewSession(); }, clock, /*max_recoveries=*/16,
                 [](const RecoveryEvent& e) {
                   std::fprintf(stderr, "shardlm: %s\n", e.ToString().c_str());
                 }) {
    cluster_.set_rejoin_probe([this] { return LostWorkerAnswers(); });
    cluster_.set_on_rejoin([](int before, int after) {
      std::fprintf(stderr, "shardlm: new session for the next request: %d -> %d nodes\n", before,
                   after);
    });
  }
  ~TcpLaunched() override { Stop().IgnoreError(); }

  absl::Status Start() { return cluster_.Start(); }
  ClusterRoot* root() override { return cluster_.root(); }
  TokenStepper* stepper() override { return &cluster_; }
  int recoveries() const override { return static_cast<int>(cluster_.recoveries().size()); }
  absl::Status NextRequest() override { return cluster_.Reset(); }
  absl::Status Stop() override {
    if (stopped_) return stop_status_;
    stopped_ = true;
    stop_status_ = cluster_.Stop();
    return stop_status_;
  }

 private:
  absl::StatusOr<std::unique_ptr<ClusterSessionHandle>> NewSession();
  // Whether a worker left out of the current session accepts connections
  // again (a quick connect, no handshake).
  bool LostWorkerAnswers() const;

  const std::vector<tcp::HostPort> workers_;
  std::vector<bool> in_session_;  // per worker: part of the current session
  const tcp::MeshOptions mesh_;
  ModelSource model_;
  std::unique_ptr<Backend> backend_;
  const SessionSettings settings_;
  RealClock* clock_;
  bool first_ = true;
  RecoveringCluster cluster_;
  bool stopped_ = false;
  absl::Status stop_status_;
};

absl::StatusOr<std::unique_ptr<ClusterSessionHandle>> TcpLaunched::NewSession() {
  // The first session needs every worker; a recovery takes whoever answers.
  tcp::DialOptions dial;
  dial.skip_unreachable = !first_;
  // A worker may still be ending the previous root's session (a root that
  // just exited): busy is retried briefly before it counts.
  dial.busy_retry = first_ ? absl::Seconds(2) : absl::Seconds(3);
  ASSIGN_OR_RETURN(tcp::DialedCluster dialed, tcp::DialAvailable(workers_, mesh_, dial));
  for (const std::string& why : dialed.skipped) {
    std::fprintf(stderr, "shardlm: leaving out %s\n", why.c_str());
  }
  SessionSettings settings = settings_;
  settings.shares = {settings_.shares[0]};
  for (int i : dialed.included) settings.shares.push_back(settings_.shares[i + 1]);
  std::unique_ptr<Transport> observed;
  if (recorder() != nullptr) {
    std::vector<int> nodes;
    for (int i : dialed.included) nodes.push_back(i + 1);
    observed = recorder()->Wrap(dialed.transport.get(), nodes);
  }
  Transport* transport = observed ? observed.get() : dialed.transport.get();
  absl::StatusOr<RootSession> session;
  {
    WeightBars bars([&](int r) {
      const tcp::HostPort& w = workers_[dialed.included[r - 1]];
      return absl::StrCat("rank ", r, " (", w.host, ":", w.port, ")");
    });
    session = StartClusterRoot(model_, settings, backend_.get(), transport, clock_,
                               bars.Callback());
  }
  if (!session.ok()) {
    dialed.transport->Abort();
    return session.status();
  }
  if (first_ && recorder() != nullptr) recorder()->set_streamed(session->streamed);
  first_ = false;
  in_session_.assign(workers_.size(), false);
  for (int i : dialed.included) in_session_[i] = true;
  ClusterOptions options;
  options.clock = clock_;
  options.timeout = settings.timeout;
  return std::make_unique<TcpSession>(std::move(dialed.transport), std::move(observed),
                                      *std::move(session), options);
}

bool TcpLaunched::LostWorkerAnswers() const {
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (i < in_session_.size() && in_session_[i]) continue;
    absl::StatusOr<tcp::Socket> probe = tcp::Connect(
        workers_[i].host, workers_[i].port, clock_->Now() + absl::Milliseconds(500), clock_);
    if (probe.ok()) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LaunchedCluster>> LaunchTcp(const std::string& path,
                                                           std::shared_ptr<const GgufFile> file,
                                                           const BackendOptions& backend_options,
                                                           const SessionSettings& settings,
                                                           RealClock* clock) {
  ASSIGN_OR_RETURN(std::vector<tcp::HostPort> workers, tcp::ParseHostPortList(FLAGS_workers));
  tcp::MeshOptions mesh;
  mesh.clock = clock;
  mesh.setup_timeout = settings.timeout;
  if (FLAGS_failure_timeout > 0) {
    mesh.failure_timeout = absl::Seconds(FLAGS_failure_timeout);
    // A worker that is alive answers a handshake at once; one that is
    // frozen must not hold a recovery up for long.
    mesh.handshake_timeout = std::clamp(mesh.failure_timeout, absl::Seconds(1), absl::Seconds(10));
  }
  if (!SecretFileFlag().empty()) {
    ASSIGN_OR_RETURN(mesh.secret, tcp::ReadSecretFile(SecretFileFlag()));
  }
  ASSIGN_OR_RETURN(ModelSource model, HashModel(path, std::move(file)));
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                   CreateBackend(BackendNameFromFlags(), backend_options));
  const std::string describe = absl::StrCat(
      backend->Describe(), " | nodes ", settings.shares.size(), " (shares ",
      FormatShares(settings.shares), ") over tcp, wire ", WireFormatName(settings.wire));
  std::unique_ptr<RunRecorder> recorder = RecorderFromFlags(model, settings);
  auto launched = std::make_unique<TcpLaunched>(std::move(workers), std::move(mesh),
                                                std::move(model), std::move(backend), settings,
                                                clock);
  launched->set_recorder(std::move(recorder));
  RETURN_IF_ERROR(launched->Start());
  launched->set_describe(describe, static_cast<int>(settings.shares.size()));
  return launched;
}

}  // namespace shardlm::cli
