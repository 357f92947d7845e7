#include "transport/mpi/mpi_session.h"

#include <mpi.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "transport/mpi/mpi_transport.h"

namespace shardlm {
namespace mpi {
namespace {

const char* LevelName(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE:
      return "single";
    case MPI_THREAD_FUNNELED:
      return "funneled";
    case MPI_THREAD_SERIALIZED:
      return "serialized";
    default:
      return "multiple";
  }
}

}  // namespace

bool MpiSession::Available() { return true; }

absl::StatusOr<std::unique_ptr<MpiSession>> MpiSession::Start() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized || finalized) {
    return absl::FailedPreconditionError("MPI was already started in this process");
  }
  int provided = MPI_THREAD_SINGLE;
  const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  if (rc != MPI_SUCCESS) {
    return absl::UnavailableError(absl::StrCat("MPI_Init_thread failed with code ", rc));
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, world = 0, len = 0;
  char host[MPI_MAX_PROCESSOR_NAME];
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (MPI_Get_processor_name(host, &len) != MPI_SUCCESS) len = 0;
  std::unique_ptr<MpiSession> session(
      new MpiSession(rank, world, LevelName(provided), std::string(host, len)));
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    session->world_size_ = 0;  // finalised already
    return absl::FailedPreconditionError(
        "MPI gave MPI_THREAD_SINGLE; shardlm needs MPI_THREAD_FUNNELED or higher");
  }
  return session;
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (world_size_ > 0 && !finalized) MPI_Finalize();
}

absl::StatusOr<std::unique_ptr<Transport>> MpiSession::CreateTransport(Clock* clock) const {
  ASSIGN_OR_RETURN(std::unique_ptr<MpiTransport> t, MpiTransport::Create(clock));
  return std::unique_ptr<Transport>(std::move(t));
}

void MpiSession::Abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort should not return
}

}  // namespace mpi
}  // namespace shardlm
