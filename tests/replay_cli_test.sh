#!/usr/bin/env bash
# Record and replay: a real TCP run (4 processes, sampled, three requests)
# with --record, in which a worker is killed mid-request and restarted, is
# replayed on the simulator by `shardlm sim --replay`: every root call and
# every token must match, deterministically. A tampered recording diverges,
# a bad one is a one-line error.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"

trap kill_workers EXIT

if [ -z "$MODEL" ]; then
  echo "SKIP: ../shared/models/stories260K.gguf is absent"; exit 0
fi

start_worker a; PA=$PORT
start_worker b; PB=$PORT; B=$WPID
start_worker c; PC=$PORT
printf 'Once upon a time\nThe dog\nA bird sang\n' >"$T/prompts"
timeout 120 "$BIN" generate --model "$MODEL" --transport tcp --threads 1 \
  --workers "127.0.0.1:$PA,127.0.0.1:$PB,127.0.0.1:$PC" --temperature 0.9 --seed 3 --steps 200 \
  --prompts "$T/prompts" --record "$T/rec.txt" >"$T/out" 2>"$T/err" & RUN=$!
for _ in $(seq 4000); do [ "$(stat -c %s "$T/out" 2>/dev/null || echo 0)" -ge 50 ] && break; sleep 0.005; done
kill -9 $B
for _ in $(seq 4000); do grep -q "recovered from" "$T/err" && break; sleep 0.005; done
start_worker b2 --port "$PB"
wait $RUN; rc=$?
if [ "$rc" -eq 0 ] && grep -q "recovered from" "$T/err" && [ -s "$T/rec.txt" ]; then
  pass "recorded a run with a lost worker ($(grep -c '^sessions {' "$T/rec.txt") sessions)"
else
  fail "recording run (rc=$rc): $(head -c 400 "$T/err")"
fi

"$BIN" sim --replay "$T/rec.txt" --check-determinism >"$T/replay" 2>&1; rc=$?
if [ "$rc" -eq 0 ] && grep -q "replay matches the recording" "$T/replay" \
  && grep -q "recovery recovered from" "$T/replay"; then
  pass "replay matches: $(grep -o 'root calls: .*' "$T/replay")"
else
  fail "replay (rc=$rc): $(head -c 600 "$T/replay")"
fi

# One payload hash changed: the replay names the call where it diverges.
awk 'BEGIN{done=0} /hash: / && !done && ++n==500 {sub(/hash: [0-9]+/, "hash: 12345"); done=1} {print}' \
  "$T/rec.txt" >"$T/tampered.txt"
"$BIN" sim --replay "$T/tampered.txt" >"$T/tampered" 2>&1; rc=$?
if [ "$rc" -ne 0 ] && grep -q "diverged: session 1 call" "$T/tampered"; then
  pass "a tampered recording diverges: $(grep -o 'diverged: session [0-9]* call [0-9]*' "$T/tampered")"
else
  fail "tampered replay (rc=$rc): $(head -c 400 "$T/tampered")"
fi

echo "garbage" >"$T/bad.txt"
expect_error "a file that is no recording" "not a shardlm run recording" -- "$BIN" sim --replay "$T/bad.txt"
expect_error "--record needs a remote transport" "--record goes with --transport tcp or mpi" -- \
  "$BIN" generate --model "$MODEL" --nodes 2 --record "$T/x.txt"

[ "$fails" -eq 0 ] && exit 0 || exit 1
