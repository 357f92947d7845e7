// Starting the tensor-parallel cluster a command asked for on its flags:
// --nodes N [--shares S] --transport local (threads of this process),
// --transport tcp --workers H:P,... [--secret-file F] (`shardlm worker`
// processes), or --transport mpi (every rank of an mpirun/srun job runs the
// same command: rank 0 is the root, the others serve it), with --wire and
// --allreduce. Used by generate and bench.
#ifndef SHARDLM_TOOLS_CLUSTER_LAUNCH_H_
#define SHARDLM_TOOLS_CLUSTER_LAUNCH_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/cluster_session.h"
#include "core/run_recorder.h"
#include "core/generator.h"
#include "core/gguf.h"
#include "transport/mpi/mpi_session.h"

namespace shardlm::cli {

// The source file defining the cluster flags, for Command::flag_files.
inline constexpr char kClusterFlagsFile[] = "tools/cluster_launch.cc";

// A running cluster; the caller drives rank 0 through root().
class LaunchedCluster {
 public:
  virtual ~LaunchedCluster() = default;
  virtual ClusterRoot* root() = 0;
  // What Generate drives (over TCP: recovers from lost workers).
  virtual TokenStepper* stepper() = 0;
  // Lost-worker recoveries so far.
  virtual int recoveries() const { return 0; }
  // Readies the cluster for the next request: every node forgets the last
  // sequence; over TCP, workers lost earlier that answer again rejoin the
  // plan first (a new session).
  virtual absl::Status NextRequest() { return root()->Reset(); }
  // Ends the session on every node (workers go back to waiting for a root).
  virtual absl::Status Stop() = 0;
  // The recording --record asked for (null without it); the caller adds
  // the requests and saves it once the cluster stopped.
  RunRecorder* recorder() const { return recorder_.get(); }
  void set_recorder(std::unique_ptr<RunRecorder> recorder) { recorder_ = std::move(recorder); }
  // Writes the recording to the --record file (OK without one).
  absl::Status SaveRecording() const;
  // "<rank 0 backend> | nodes N (shares ...) over <transport>".
  const std::string& describe() const { return describe_; }
  int nodes() const { return nodes_; }
  void set_describe(std::string describe, int nodes) {
    describe_ = std::move(describe);
    nodes_ = nodes;
  }

 protected:
  std::string describe_;
  int nodes_ = 1;
  std::unique_ptr<RunRecorder> recorder_;
};

// This process's part in the cluster the flags ask for. A command creates
// it first and destroys it last: under --transport mpi it owns MPI and tells
// the root (rank 0) from the workers (ranks > 0); otherwise this process is
// the root and the object does nothing.
class ClusterProcess {
 public:
  // Starts MPI when --transport mpi (Unimplemented in builds without MPI).
  static absl::StatusOr<std::unique_ptr<ClusterProcess>> FromFlags();

  // True on ranks > 0 of an MPI job: the command must call ServeAsWorker
  // and return its exit code, and do nothing else (no output).
  bool is_worker() const { return mpi_ != nullptr && mpi_->rank() > 0; }
  // MPI, or null unless --transport mpi.
  mpi::MpiSession* mpi() const { return mpi_.get(); }

  // A worker's whole run: joins rank 0's session (weights streamed by the
  // root, or read from this rank's --model with --local-weights), serves its
  // forward passes until it stops, and returns the exit code. Errors go to
  // stderr as one line naming `command` and this rank.
  int ServeAsWorker(const char* command);

  // The root's exit code for `status`, printed like Fail when not OK. Under
  // MPI a failure ends the whole job (MPI_Abort) so that no rank is left
  // waiting; this does not return then.
  int Finish(const char* command, const absl::Status& status);

 private:
  explicit ClusterProcess(std::unique_ptr<mpi::MpiSession> mpi) : mpi_(std::move(mpi)) {}
  absl::Status ServeAsWorkerImpl();

  std::unique_ptr<mpi::MpiSession> mpi_;
};

// The share vector the flags ask for (one entry: no cluster). Checks the
// flags against each other and against `process`: --shares vs --nodes vs
// --workers vs the MPI world size, --transport, --local-weights.
absl::StatusOr<std::vector<int>> ClusterSharesFromFlags(const ClusterProcess& process);

// Starts the cluster of `shares` (more than one) for the model at `path`
// (already opened as `file`, which must outlive the cluster), with a KV
// cache of `max_seq_len` tokens (0: the model's, capped), on the root of
// `process`. Each local node gets backend_options.threads / nodes threads;
// TCP workers use their own --threads, MPI ranks the same flags as the
// root. Progress of hashing and weight streaming goes to stderr.
absl::StatusOr<std::unique_ptr<LaunchedCluster>> LaunchClusterFromFlags(
    const std::string& path, std::shared_ptr<const GgufFile> file, const std::vector<int>& shares,
    BackendOptions backend_options, int64_t max_seq_len, RealClock* clock,
    ClusterProcess* process);

// Prints, per node, per token since `before` (both from CollectStats):
// compute ms, sync ms, bytes sent and received.
void PrintTrafficTable(const std::vector<NodeTraffic>& before,
                       const std::vector<NodeTraffic>& after, int64_t tokens, const char* what);

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_CLUSTER_LAUNCH_H_
