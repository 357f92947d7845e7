#!/usr/bin/env bash
# Recovery over TCP with real processes: `kill -9` of workers while the
# root generates; generate must finish with exit 0 and exactly the
# fault-free text (greedy and sampled), after one loss, after two, when a
# killed worker is restarted and rejoins (at the next recovery, and at the
# next request of a --prompts run), and when a worker freezes (SIGSTOP):
# a short freeze costs time only, a long one is detected by the heartbeats
# (--failure-timeout) and recovered from.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"

trap kill_workers EXIT

if [ -z "$MODEL" ]; then
  echo "SKIP: ../shared/models/stories260K.gguf is absent"; exit 0
fi
STEPS=256


# wait_bytes FILE BYTES: waits (up to 40 s) until FILE holds BYTES bytes.
wait_bytes() {
  for _ in $(seq 20000); do
    [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
    sleep 0.002
  done
}

# kill_at FILE BYTES PID: kill -9 PID once FILE holds BYTES bytes.
kill_at() {
  wait_bytes "$1" "$2"
  kill -9 "$3" 2>/dev/null
}

# three_workers: starts workers a, b, c with the model; sets W, PA..PC and
# A and B (the pids of a and b).
three_workers() {
  start_worker a --model "$MODEL"; PA=$PORT; A=$WPID
  start_worker b --model "$MODEL"; PB=$PORT; B=$WPID
  start_worker c --model "$MODEL"; PC=$PORT
  W="127.0.0.1:$PA,127.0.0.1:$PB,127.0.0.1:$PC"
}

# run_case NAME FLAGS...: generates over the current workers into $T/NAME.
run_case() {
  local name="$1"; shift
  timeout 120 "$BIN" generate --model "$MODEL" --steps $STEPS --threads 1 --transport tcp \
    --workers "$W" --cluster-timeout-s 10 "$@" >"$T/$name" 2>"$T/$name.err"
}

for mode in greedy sampled; do
  if [ "$mode" = greedy ]; then SAMPLING=(--temperature 0); else SAMPLING=(--temperature 0.9 --seed 7); fi
  "$BIN" generate --model "$MODEL" --steps $STEPS "${SAMPLING[@]}" >"$T/want_$mode" 2>/dev/null

  # One worker killed at a random point early in the text.
  three_workers
  at=$(( 20 + RANDOM % 60 ))
  run_case one_$mode "${SAMPLING[@]}" & RUN=$!
  kill_at "$T/one_$mode" $at $A
  wait $RUN; rc=$?
  if [ "$rc" -eq 0 ] && cmp -s "$T/want_$mode" "$T/one_$mode" && grep -q "recovered from" "$T/one_$mode.err"; then
    pass "$mode: worker killed at byte $at, same text ($(grep -o 're-planned [0-9]* -> [0-9]* nodes' "$T/one_$mode.err"))"
  else
    fail "$mode one kill (rc=$rc): $(head -c 400 "$T/one_$mode.err")"
  fi
done

# Two workers killed at different points: the root ends alone with one worker.
three_workers
run_case two --temperature 0 & RUN=$!
kill_at "$T/two" 30 $A
kill_at "$T/two" 150 $B
wait $RUN; rc=$?
n=$(grep -c "recovered from" "$T/two.err")
if [ "$rc" -eq 0 ] && cmp -s "$T/want_greedy" "$T/two" && [ "$n" -ge 2 ]; then
  pass "two workers killed, same text ($n recoveries)"
else
  fail "two kills (rc=$rc, $n recoveries): $(head -c 400 "$T/two.err")"
fi

# A killed worker restarted on its port rejoins at the next recovery.
three_workers
run_case rejoin --temperature 0 & RUN=$!
kill_at "$T/rejoin" 30 $A
for _ in $(seq 2000); do grep -q "recovered from" "$T/rejoin.err" && break; sleep 0.005; done
start_worker a2 --model "$MODEL" --port "$PA"
kill_at "$T/rejoin" 250 $B
wait $RUN; rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$T/want_greedy" "$T/rejoin" \
  && grep -q "re-planned 4 -> 3 nodes" "$T/rejoin.err" && grep -q "re-planned 3 -> 3 nodes" "$T/rejoin.err"; then
  pass "restarted worker rejoined (4 -> 3, then 3 -> 3 nodes), same text"
else
  fail "rejoin (rc=$rc): $(head -c 600 "$T/rejoin.err")"
fi

# A killed worker restarted on its port rejoins for the next request.
printf 'Once upon a time\nThe little dog\nLily saw a\n' >"$T/prompts"
: >"$T/want_prompts"
while IFS= read -r p; do
  "$BIN" generate --model "$MODEL" --steps $STEPS --temperature 0 --prompt "$p" >>"$T/want_prompts" 2>/dev/null
done <"$T/prompts"
three_workers
run_case requests --temperature 0 --prompts "$T/prompts" & RUN=$!
kill_at "$T/requests" 40 $A
for _ in $(seq 2000); do grep -q "recovered from" "$T/requests.err" && break; sleep 0.005; done
start_worker a3 --model "$MODEL" --port "$PA"
wait $RUN; rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$T/want_prompts" "$T/requests" \
  && grep -q "re-planned 4 -> 3 nodes" "$T/requests.err" \
  && grep -q "new session for the next request: 3 -> 4 nodes" "$T/requests.err"; then
  pass "restarted worker rejoined for the next request (3 -> 4 nodes), 3 requests' text unchanged"
else
  fail "rejoin at the next request (rc=$rc): $(head -c 600 "$T/requests.err")"
fi

# A worker frozen for 1 s, under the default 3 s failure timeout: slow, not
# dead: no recovery, same text.
three_workers
run_case pause --temperature 0 & RUN=$!
wait_bytes "$T/pause" 40
kill -STOP $A; sleep 1; kill -CONT $A
wait $RUN; rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$T/want_greedy" "$T/pause" && ! grep -q "recovered from" "$T/pause.err"; then
  pass "worker frozen for 1 s: no recovery, same text"
else
  fail "short freeze (rc=$rc): $(head -c 400 "$T/pause.err")"
fi

# A worker frozen for good: the heartbeats find it silent after the 1 s
# failure timeout and the cluster goes on without it.
three_workers
run_case frozen --temperature 0 --failure-timeout 1 & RUN=$!
wait_bytes "$T/frozen" 40
kill -STOP $A
wait $RUN; rc=$?
kill -9 $A 2>/dev/null
if [ "$rc" -eq 0 ] && cmp -s "$T/want_greedy" "$T/frozen" && grep -q "went silent" "$T/frozen.err" \
  && grep -q "re-planned 4 -> 3 nodes" "$T/frozen.err"; then
  pass "frozen worker declared dead ($(grep -o 'detected after [0-9.]* ms' "$T/frozen.err" | head -1)), same text"
else
  fail "frozen worker (rc=$rc): $(head -c 600 "$T/frozen.err")"
fi

[ "$fails" -eq 0 ] && exit 0 || exit 1
