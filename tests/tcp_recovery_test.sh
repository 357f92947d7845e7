#!/usr/bin/env bash
# Recovery over TCP with real processes: `kill -9` of workers while the
# root generates; generate must finish with exit 0 and exactly the
# fault-free text (greedy and sampled), after one loss, after two, and when
# a killed worker is restarted and rejoins at the next recovery.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"

trap kill_workers EXIT

if [ -z "$MODEL" ]; then
  echo "SKIP: ../shared/models/stories260K.gguf is absent"; exit 0
fi
STEPS=256


# kill_at FILE BYTES PID: kill -9 PID once FILE holds BYTES bytes.
kill_at() {
  for _ in $(seq 20000); do
    [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ] && break
    sleep 0.002
  done
  kill -9 "$3" 2>/dev/null
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
  start_worker a --model "$MODEL"; PA=$PORT; A=$WPID
  start_worker b --model "$MODEL"; PB=$PORT
  start_worker c --model "$MODEL"; PC=$PORT
  W="127.0.0.1:$PA,127.0.0.1:$PB,127.0.0.1:$PC"
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
start_worker a --model "$MODEL"; PA=$PORT; A=$WPID
start_worker b --model "$MODEL"; PB=$PORT; B2=$WPID
start_worker c --model "$MODEL"; PC=$PORT
W="127.0.0.1:$PA,127.0.0.1:$PB,127.0.0.1:$PC"
run_case two --temperature 0 & RUN=$!
kill_at "$T/two" 30 $A
kill_at "$T/two" 150 $B2
wait $RUN; rc=$?
n=$(grep -c "recovered from" "$T/two.err")
if [ "$rc" -eq 0 ] && cmp -s "$T/want_greedy" "$T/two" && [ "$n" -ge 2 ]; then
  pass "two workers killed, same text ($n recoveries)"
else
  fail "two kills (rc=$rc, $n recoveries): $(head -c 400 "$T/two.err")"
fi

# A killed worker restarted on its port rejoins at the next recovery.
start_worker a --model "$MODEL"; PA=$PORT; A=$WPID
start_worker b --model "$MODEL"; PB=$PORT; B2=$WPID
start_worker c --model "$MODEL"; PC=$PORT
W="127.0.0.1:$PA,127.0.0.1:$PB,127.0.0.1:$PC"
run_case rejoin --temperature 0 & RUN=$!
kill_at "$T/rejoin" 30 $A
for _ in $(seq 2000); do grep -q "recovered from" "$T/rejoin.err" && break; sleep 0.005; done
start_worker a2 --model "$MODEL" --port "$PA"
kill_at "$T/rejoin" 250 $B2
wait $RUN; rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$T/want_greedy" "$T/rejoin" \
  && grep -q "re-planned 4 -> 3 nodes" "$T/rejoin.err" && grep -q "re-planned 3 -> 3 nodes" "$T/rejoin.err"; then
  pass "restarted worker rejoined (4 -> 3, then 3 -> 3 nodes), same text"
else
  fail "rejoin (rc=$rc): $(head -c 600 "$T/rejoin.err")"
fi

[ "$fails" -eq 0 ] && exit 0 || exit 1
