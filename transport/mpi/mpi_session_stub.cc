// MpiSession for builds without MPI (@mpi//:mpi.bzl HAVE_MPI = False).
#include <cstdlib>

#include "transport/mpi/mpi_session.h"

namespace shardlm {
namespace mpi {

bool MpiSession::Available() { return false; }

absl::StatusOr<std::unique_ptr<MpiSession>> MpiSession::Start() {
  return absl::UnimplementedError(
      "this shardlm was built without MPI (install libopenmpi-dev and openmpi-bin, e.g. with "
      "./setup.sh, then rebuild)");
}

MpiSession::~MpiSession() = default;

absl::StatusOr<std::unique_ptr<Transport>> MpiSession::CreateTransport(Clock*) const {
  return absl::UnimplementedError("this shardlm was built without MPI");
}

void MpiSession::Abort(int code) { std::_Exit(code); }

}  // namespace mpi
}  // namespace shardlm
