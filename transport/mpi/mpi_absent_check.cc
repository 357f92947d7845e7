// Stand-in for mpi_transport_check in builds without MPI: says so, exit 77.
#include <cstdio>

int main() {  // whatever the arguments
  std::printf("built without MPI (@mpi//:mpi.bzl HAVE_MPI = False)\n");
  return 77;
}
