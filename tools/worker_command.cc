// `shardlm worker`: one node of a TCP cluster. Listens for roots
// (`generate --transport tcp --workers ...`) and serves their sessions one
// after another: joins the session's mesh, loads its weight slices (from
// --model when that file is the root's, else streamed from the root), and
// runs the root's forward passes until the root stops or disappears.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/cluster_session.h"
#include "core/cluster_setup.h"
#include "core/sha256.h"
#include "core/status_macros.h"
#include "gflags/gflags.h"
#include "tools/backend_flags.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/shared_flags.h"
#include "transport/tcp/handshake.h"
#include "transport/tcp/mesh.h"

DEFINE_string(bind, "0.0.0.0", "Address to listen on (0.0.0.0: every interface)");
DEFINE_int32(sessions, 0, "Exit after serving this many root sessions (0: serve forever)");
DEFINE_int32(setup_timeout_s, 60, "Seconds a session's setup (mesh, weights) may take");

namespace shardlm::cli {
namespace {

void Log(const std::string& line) {
  std::fprintf(stderr, "shardlm worker: %s\n", line.c_str());
  std::fflush(stderr);
}

// The --model file, hashed, or nothing (weights will be streamed).
absl::StatusOr<std::unique_ptr<ModelSource>> LocalModel() {
  if (ModelFlag().empty()) return nullptr;
  ProgressLine progress(absl::StrCat("hashing ", ModelFlag()));
  ASSIGN_OR_RETURN(ModelSource model,
                   OpenModelSource(
                       ModelFlag(),
                       [&](uint64_t done, uint64_t total) { progress.Update(done, total); },
                       ModelMemoryFlag()));
  progress.Finish(absl::StrCat("model ", ModelFlag(), " (", HumanBytes(model.file->file_size()),
                               ", sha256 ", HexDigest(model.sha256).substr(0, 16), "...)"));
  return std::make_unique<ModelSource>(std::move(model));
}

// One session on `transport`: setup, then the root's commands.
absl::Status Serve(tcp::TcpTransport* transport, const ModelSource* local,
                   StreamedWeights* cache, const BackendOptions& backend_options, Clock* clock) {
  Log(absl::StrCat("session: rank ", transport->rank(), " of ", transport->world_size(),
                   ", root ", transport->PeerName(0)));
  const WorkerBackendFactory make_backend = [&](Numerics numerics) {
    BackendOptions o = backend_options;
    o.numerics = numerics;
    return CreateBackend(BackendNameFromFlags(), o);
  };
  const absl::Time start = clock->Now();
  ASSIGN_OR_RETURN(std::unique_ptr<WorkerSession> session,
                   JoinClusterSession(transport, local, make_backend, clock,
                                      absl::Seconds(FLAGS_setup_timeout_s), nullptr, cache));
  const std::string source =
      !session->streamed ? " (from --model)"
                         : absl::StrFormat(" (%.1f MB streamed from the root, %.1f MB kept from "
                                           "the last session)",
                                           session->weight_bytes_received / 1e6,
                                           session->weight_bytes_kept / 1e6);
  Log(absl::StrCat("loaded ", session->engine->shard().q_heads(), " heads, ",
                   session->engine->shard().ffn_rows(), " ffn rows of ", session->model_name,
                   source, " in ",
                   absl::FormatDuration(clock->Now() - start), " on ",
                   session->backend->Describe()));
  return RunClusterWorker(session->engine.get(), transport, session->cluster);
}

absl::Status RunWorkerImpl() {
  if (PortFlag() < 0 || PortFlag() > 65535) return absl::InvalidArgumentError("--port out of range");
  if (FLAGS_sessions < 0) return absl::InvalidArgumentError("--sessions must be >= 0");
  if (FLAGS_setup_timeout_s < 1) return absl::InvalidArgumentError("--setup-timeout-s must be >= 1");
  ASSIGN_OR_RETURN(const BackendOptions backend_options, BackendOptionsFromFlags());
  RealClock clock;
  tcp::MeshOptions mesh;
  mesh.clock = &clock;
  mesh.setup_timeout = absl::Seconds(FLAGS_setup_timeout_s);
  if (!SecretFileFlag().empty()) {
    ASSIGN_OR_RETURN(mesh.secret, tcp::ReadSecretFile(SecretFileFlag()));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ModelSource> local, LocalModel());
  StreamedWeights cache;  // streamed slices, kept for the next session
  ASSIGN_OR_RETURN(std::unique_ptr<tcp::MeshListener> listener,
                   tcp::MeshListener::Start(FLAGS_bind, PortFlag(), mesh));
  Log(absl::StrCat("listening on ", FLAGS_bind, ":", listener->port(),
                   mesh.secret.empty() ? " (no authentication)" : " (shared secret required)"));
  for (int served = 0; FLAGS_sessions == 0 || served < FLAGS_sessions;) {
    absl::StatusOr<std::unique_ptr<tcp::TcpTransport>> transport =
        listener->NextSession(absl::InfiniteFuture());
    if (!transport.ok()) {
      if (absl::IsCancelled(transport.status())) return transport.status();
      Log(absl::StrCat("session setup failed: ", transport.status().message()));
      continue;
    }
    const absl::Status s = Serve(transport->get(), local.get(), &cache, backend_options, &clock);
    (*transport)->Abort();
    transport->reset();
    listener->EndSession();
    ++served;
    Log(s.ok() ? "session ended; waiting for the next root"
               : absl::StrCat("session failed: ", s.message(), "; waiting for the next root"));
  }
  return absl::OkStatus();
}

}  // namespace

int RunWorker(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return Fail("worker", absl::InvalidArgumentError(
                              absl::StrCat("unexpected argument '", args[0], "'")));
  }
  const absl::Status s = RunWorkerImpl();
  return s.ok() ? 0 : Fail("worker", s);
}

}  // namespace shardlm::cli
