#!/usr/bin/env bash
# `mpirun -np N shardlm generate --transport mpi` as users run it (2 cores,
# loopback only): for N = 2, 3, 4 the greedy text on stories260K and on a
# synthetic Q4_0 model equals one node's and the TCP transport's, with the
# weights streamed by rank 0 or read by every rank (--local-weights); only
# rank 0 prints. Flags that contradict the MPI job are one clear error. A
# rank killed mid-generation makes the job fail within a bound, naming the
# rank. Skips when mpirun is absent or shardlm was built without MPI. Every
# process is killed on exit.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"
source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/mpi_test_lib.sh"

cleanup() {
  kill_workers
  mpi_cleanup
}
trap cleanup EXIT

if "$BIN" generate --transport mpi --steps 1 2>&1 | grep -q "built without MPI"; then
  echo "SKIP: shardlm was built without MPI"; exit 0
fi

# The small preset's 32-wide heads split a Q4_0 model over 2, 3 and 4 nodes;
# the tiny preset's 8 heads of 8 make only 2 whole Q4_0 blocks of attn_output
# columns (3 nodes must fail with one clear error).
"$BIN" make-model --preset small --type q4_0 --out "$T/small_q4.gguf" 2>/dev/null \
  && "$BIN" make-model --preset tiny --type q4_0 --out "$T/tiny_q4.gguf" 2>/dev/null \
  && "$BIN" make-model --preset tiny --out "$T/tiny.gguf" 2>/dev/null \
  || { echo "make-model failed"; exit 1; }
MODELS=("$T/small_q4.gguf")
if [ -n "$MODEL" ]; then
  MODELS+=("$MODEL")
else
  echo "NOTE: stories260K absent; using the tiny f32 model instead"
  MODEL="$T/tiny.gguf"; MODELS+=("$MODEL")
fi

GEN=(generate --temperature 0 --steps 60 --threads 1)

start_worker w1; P1=$PORT
start_worker w2; P2=$PORT
start_worker w3; P3=$PORT
WORKERS=("127.0.0.1:$P1" "127.0.0.1:$P1,127.0.0.1:$P2" "127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3")

for m in "${MODELS[@]}"; do
  name=$(basename "$m" .gguf)
  "$BIN" "${GEN[@]}" --model "$m" >"$T/single" 2>"$T/single.err" \
    || { fail "$name: single node: $(cat "$T/single.err")"; continue; }
  for n in 2 3 4; do
    timeout 60 "$BIN" "${GEN[@]}" --model "$m" --transport tcp \
      --workers "${WORKERS[$((n - 2))]}" >"$T/tcp" 2>"$T/tcp.err"; rc=$?
    [ "$rc" -eq 0 ] && cmp -s "$T/single" "$T/tcp" \
      || fail "$name: tcp with $n nodes (rc=$rc): $(tail -c 300 "$T/tcp.err")"
    for weights in streamed --local-weights; do
      extra=(); [ "$weights" = streamed ] || extra=("$weights")
      timeout 60 "${MPIRUN[@]}" -np "$n" "$BIN" "${GEN[@]}" --model "$m" --transport mpi \
        "${extra[@]}" >"$T/mpi" 2>"$T/mpi.err"; rc=$?
      what="$name: mpirun -np $n, weights $weights"
      if [ "$rc" -eq 0 ] && [ -s "$T/mpi" ] && cmp -s "$T/single" "$T/mpi" \
         && cmp -s "$T/tcp" "$T/mpi"; then
        pass "$what: same text as one node and as tcp"
      else
        fail "$what (rc=$rc): $(diff "$T/single" "$T/mpi" | head -5) $(tail -c 400 "$T/mpi.err")"
      fi
      if [ "$weights" = streamed ]; then
        [ "$(grep -c 'sent rank [0-9]* its weights' "$T/mpi.err")" -eq $((n - 1)) ] \
          || fail "$what: rank 0 did not stream to every rank: $(tail -c 300 "$T/mpi.err")"
      elif grep -q 'sent rank' "$T/mpi.err"; then
        fail "$what: weights streamed although every rank has the model"
      fi
    done
  done
done

# mpi_error NAME WANT NP ARGS...: the job fails and stderr names the cause
# once (rank 0 reports it; OpenMPI adds its own banner).
mpi_error() {
  local name="$1" want="$2" np="$3"; shift 3
  timeout 60 "${MPIRUN[@]}" -np "$np" "$BIN" "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local n; n=$(grep -cF -- "$want" "$T/err")
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$n" -eq 1 ] && [ ! -s "$T/out" ]; then
    pass "$name"
  else
    fail "$name (rc=$rc, matching lines=$n): $(head -c 400 "$T/err")"
  fi
}
M="$MODEL"
mpi_error "a model that cannot be split: one clear error" \
  "shardlm generate: error: cannot split 192 ffn rows over 7 nodes" \
  7 "${GEN[@]}" --model "$T/tiny_q4.gguf" --transport mpi
mpi_error "--shares against the MPI world size" \
  "shardlm generate: error: --shares 1,1,1 gives 3 nodes but the MPI job has 2 ranks" \
  2 "${GEN[@]}" --model "$M" --transport mpi --shares 1,1,1
mpi_error "--nodes against the MPI world size" "--nodes 3 but the MPI job has 2 ranks" \
  2 "${GEN[@]}" --model "$M" --transport mpi --nodes 3
mpi_error "bench: --shares against the MPI world size" \
  "shardlm bench: error: --shares 1,2 gives 2 nodes but the MPI job has 3 ranks" \
  3 bench --model "$M" --transport mpi --shares 1,2
expect_error "mpi outside mpirun" "needs 2 or more MPI ranks" -- timeout 30 "$BIN" "${GEN[@]}" \
  --model "$M" --transport mpi
expect_error "--local-weights without mpi" "--local-weights goes with --transport mpi" -- \
  "$BIN" "${GEN[@]}" --model "$M" --local-weights

# bench over MPI: a table from rank 0 only, with a traffic row per rank.
timeout 60 "${MPIRUN[@]}" -np 2 "$BIN" bench --model "$M" --transport mpi --threads 1 \
  --prompt-tokens 8 --decode-tokens 8 >"$T/bench" 2>"$T/bench.err"; rc=$?
if [ "$rc" -eq 0 ] && [ "$(grep -c '^decode tokens/s' "$T/bench")" -eq 1 ] \
   && grep -q 'over mpi' "$T/bench"; then
  pass "bench --transport mpi"
else
  fail "bench --transport mpi (rc=$rc): $(cat "$T/bench") $(tail -c 300 "$T/bench.err")"
fi

# kill_rank R: kills MPI rank R of this test's jobs; records when in
# $T/killed_at.
kill_rank() {
  local p
  for p in /proc/[0-9]*; do
    if grep -qs -- "$MPI_TMP" "$p/environ" \
       && tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
      date +%s.%N >"$T/killed_at"
      kill -9 "${p#/proc/}"
    fi
  done
}

# A long generation on 3 ranks whose rank 2 is killed once rank 0 has
# printed some text. ARGS: extra mpirun flags. Sets RC and TOOK (seconds
# from the kill to the end of mpirun); stderr is in $T/long.err.
run_and_kill() {
  rm -f "$T/long" "$T/killed_at"
  timeout 60 "${MPIRUN[@]}" "$@" -np 3 "$BIN" generate --temperature 0 --threads 1 \
    --steps 100000 --ctx 100000 --model "$M" --transport mpi --cluster-timeout-s 5 \
    >"$T/long" 2>"$T/long.err" &
  local job=$!
  while kill -0 "$job" 2>/dev/null; do
    if [ "$(stat -c %s "$T/long" 2>/dev/null || echo 0)" -gt 200 ]; then kill_rank 2; break; fi
    sleep 0.05
  done
  wait "$job"; RC=$?
  TOOK=$(awk -v a="$(cat "$T/killed_at" 2>/dev/null || echo 0)" -v b="$(date +%s.%N)" \
    'BEGIN { printf "%.1f", b - a }')
}

# With orte_abort_on_non_zero_status 0 mpirun keeps the job alive: rank 0
# notices by its deadline (5 s), names a rank that did not answer, and
# aborts the job. When rank 2 dies between its sends of an all-reduce, rank 1
# waits for it while rank 0 waits for rank 1: rank 0 then names rank 1, and
# rank 1's own line names rank 2. Either way the dead rank is named.
run_and_kill --mca orte_abort_on_non_zero_status 0
ROOT_LINE='^shardlm generate: error: .*rank [12] did not (answer|take the message) within'
DEAD_LINE='^shardlm generate( rank 1)?: error: .*rank 2 did not (answer|take the message) within'
if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && [ -s "$T/killed_at" ] \
   && grep -qE "$ROOT_LINE" "$T/long.err" && grep -qE "$DEAD_LINE" "$T/long.err" \
   && awk -v t="$TOOK" 'BEGIN { exit !(t < 15) }'; then
  pass "rank 2 killed (abort_on_non_zero_status 0): rank 0 reports, rank 2 is named; job ended ${TOOK}s after the kill (rc=$RC)"
else
  fail "rank 2 killed, rank 0 reporting (rc=$RC, ${TOOK}s): $(grep -v -e '^ *$' -e '^---*$' "$T/long.err" | tail -c 2000)"
fi

# By default mpirun itself ends the job when a rank dies, and names it.
run_and_kill
if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && [ -s "$T/killed_at" ] \
   && grep -q 'process rank 2 .*exited on signal 9' "$T/long.err" \
   && awk -v t="$TOOK" 'BEGIN { exit !(t < 15) }'; then
  pass "rank 2 killed (default mpirun): mpirun names it; job ended ${TOOK}s after the kill (rc=$RC)"
else
  fail "rank 2 killed, default mpirun (rc=$RC, ${TOOK}s): $(grep -v '^ *$' "$T/long.err" | tail -c 600)"
fi

[ "$fails" -eq 0 ] && exit 0 || exit 1
