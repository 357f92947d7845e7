# Shared by the MPI shell tests (source it): finds mpirun (skipping the test
# with a message when it is absent) and sets MPIRUN to an mpirun command
# line that works as root on a 2-core machine and talks over loopback only.
# Callers must run mpi_cleanup on exit (it kills what mpirun left behind).
if ! command -v mpirun >/dev/null 2>&1; then
  echo "SKIP: mpirun not found (install openmpi-bin, e.g. with ./setup.sh)"
  exit 0
fi
# OpenMPI's session directory holds unix sockets: keep its path short.
MPI_TMP=$(mktemp -d /tmp/shardlm-mpi.XXXXXX)
export TMPDIR="$MPI_TMP"
# Shared-memory segments are named after the job id, which derives from
# mpirun's pid: jobs in two test sandboxes (pid namespaces) can get the same
# one, so each test keeps its segments in a folder of its own.
MPI_SHM=$(mktemp -d /dev/shm/shardlm-mpi.XXXXXX 2>/dev/null || mktemp -d "$MPI_TMP/shm.XXXXXX")
# Idle ranks yield the CPU: the tests oversubscribe 2 cores.
export OMPI_MCA_mpi_yield_when_idle=1
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none
  --mca btl self,vader,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo
  --mca btl_vader_single_copy_mechanism none --mca btl_vader_backing_directory "$MPI_SHM")

# Kills every process still running from this test's mpirun jobs (their
# environment names our session directory), then removes our folders.
mpi_cleanup() {
  local p
  for p in /proc/[0-9]*; do
    if grep -qs -- "$MPI_TMP" "$p/environ" 2>/dev/null; then
      kill -9 "${p#/proc/}" 2>/dev/null
    fi
  done
  rm -rf "$MPI_TMP" "$MPI_SHM"
}
