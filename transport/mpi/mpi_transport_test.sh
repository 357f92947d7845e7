#!/usr/bin/env bash
# Runs mpi_transport_check under mpirun with 2 and 3 ranks; skips when
# mpirun is absent or this build has no MPI.
set -uo pipefail
source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/mpi_test_lib.sh"
trap mpi_cleanup EXIT

CHECK="$TEST_SRCDIR/$TEST_WORKSPACE/transport/mpi/mpi_transport_check"
if ! "$CHECK" --available >/dev/null 2>&1; then echo "SKIP: $("$CHECK")"; exit 0; fi

fails=0
for n in 2 3; do
  out="$TEST_TMPDIR/np$n.out"
  timeout 50 "${MPIRUN[@]}" -np "$n" "$CHECK" >"$out" 2>&1; rc=$?
  passes=$(grep -c ': PASS: ' "$out")
  if [ "$rc" -eq 0 ] && ! grep -q ': FAIL: ' "$out" && [ "$passes" -gt $((20 * n)) ]; then
    echo "PASS: -np $n ($passes checks passed)"
  else
    echo "FAIL: -np $n (rc=$rc)"; grep -v ': PASS: ' "$out" | head -40
    fails=$((fails + 1))
  fi
done
[ "$fails" -eq 0 ]
