// MPI for one process, for as long as a command runs under mpirun or srun
// (--transport mpi). The header names no MPI type, so the command line
// builds the same with or without MPI installed: without it, Start() says
// so (Unimplemented) and nothing else changes.
#ifndef SHARDLM_TRANSPORT_MPI_MPI_SESSION_H_
#define SHARDLM_TRANSPORT_MPI_MPI_SESSION_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/transport.h"

namespace shardlm {
namespace mpi {

// RAII owner of MPI_Init_thread / MPI_Finalize. At most one per process,
// ever (MPI cannot be started twice).
class MpiSession {
 public:
  // Whether this binary was built with MPI.
  static bool Available();

  // Starts MPI asking for MPI_THREAD_SERIALIZED (the engine calls the
  // transport from one thread per process) and requiring at least
  // MPI_THREAD_FUNNELED; errors on MPI_COMM_WORLD are returned, not fatal.
  // Unimplemented when built without MPI; FailedPrecondition when MPI was
  // started before in this process.
  static absl::StatusOr<std::unique_ptr<MpiSession>> Start();

  // MPI_Finalize (unless Abort ran). Every rank must get here for it to
  // return: a rank that cannot should Abort instead.
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // This process's rank in MPI_COMM_WORLD and the world's size.
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // The thread level MPI gave: "funneled", "serialized" or "multiple".
  const std::string& thread_level() const { return thread_level_; }
  // MPI_Get_processor_name (the host).
  const std::string& host() const { return host_; }

  // A Transport over MPI_COMM_WORLD whose deadlines read `clock` (not
  // owned). It must be destroyed before this session.
  absl::StatusOr<std::unique_ptr<Transport>> CreateTransport(Clock* clock) const;

  // Ends every process of the job with exit status `code` (MPI_Abort), so
  // that no rank is left waiting on this one. Does not return.
  [[noreturn]] void Abort(int code);

 private:
  MpiSession(int rank, int world_size, std::string thread_level, std::string host)
      : rank_(rank), world_size_(world_size), thread_level_(std::move(thread_level)),
        host_(std::move(host)) {}

  int rank_;
  int world_size_;
  std::string thread_level_;
  std::string host_;
};

}  // namespace mpi
}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_MPI_MPI_SESSION_H_
