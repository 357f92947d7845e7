#!/usr/bin/env bash
# `shardlm worker` and `generate --transport tcp` as users run them, on
# 127.0.0.1: the cluster's greedy text equals one node's; --stats reports
# every node; wrong or missing secrets, garbage bytes on the worker port and
# a worker killed before the handshake are one-line errors within a time
# bound, and the workers keep serving afterwards. Every worker is killed on
# exit.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"

trap kill_workers EXIT

if [ -z "$MODEL" ]; then
  MODEL="$T/tiny.gguf"
  "$BIN" make-model --preset tiny --out "$MODEL" 2>/dev/null || { echo "make-model failed"; exit 1; }
fi
printf 'correct horse battery staple\n' >"$T/secret"
printf 'wrong\n' >"$T/wrong"


start_worker w1 --secret-file "$T/secret" --model "$MODEL"; P1=$PORT
start_worker w2 --secret-file "$T/secret"; P2=$PORT
start_worker w3 --secret-file "$T/secret" --model "$MODEL"; P3=$PORT
W="127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3"

"$BIN" generate --model "$MODEL" --temperature 0 --steps 120 >"$T/single" 2>/dev/null
timeout 60 "$BIN" generate --model "$MODEL" --temperature 0 --steps 120 --transport tcp \
  --workers "$W" --secret-file "$T/secret" >"$T/tcp" 2>"$T/tcp.err"; rc=$?
if [ "$rc" -eq 0 ] && [ -s "$T/single" ] && cmp -s "$T/single" "$T/tcp"; then
  pass "4 nodes over tcp: same text as one node"
else
  fail "4 nodes over tcp (rc=$rc): $(head -c 300 "$T/tcp.err")"
fi

timeout 60 "$BIN" generate --model "$MODEL" --temperature 0 --steps 20 --transport tcp \
  --workers "127.0.0.1:$P1,127.0.0.1:$P2" --shares 1,2,1 --secret-file "$T/secret" --stats \
  >"$T/stats" 2>"$T/stats.err"; rc=$?
rows=$(grep -cE '^ +[0-2] +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+$' "$T/stats.err")
if [ "$rc" -eq 0 ] && [ "$rows" -eq 6 ] && grep -q "over tcp" "$T/stats.err"; then
  pass "--stats: compute, sync and bytes per node"
else
  fail "--stats (rc=$rc, rows=$rows): $(cat "$T/stats.err")"
fi

expect_error "wrong secret" "wrong shared secret" -- timeout 30 "$BIN" generate --model "$MODEL" \
  --steps 2 --transport tcp --workers "127.0.0.1:$P1" --secret-file "$T/wrong"
expect_error "root without secret" "--secret-file" -- timeout 30 "$BIN" generate --model "$MODEL" \
  --steps 2 --transport tcp --workers "127.0.0.1:$P1"
expect_error "tcp without workers" "--workers" -- "$BIN" generate --model "$MODEL" --transport tcp
expect_error "malformed worker address" "HOST:PORT" -- "$BIN" generate --model "$MODEL" \
  --transport tcp --workers "localhost"
expect_error "shares against workers" "--shares" -- "$BIN" generate --model "$MODEL" \
  --transport tcp --workers "127.0.0.1:$P1" --shares 1,1,1
expect_error "missing secret file" "$T/nope" -- "$BIN" worker --secret-file "$T/nope"

# Random bytes and a silent connection on a worker's port.
if exec 3<>"/dev/tcp/127.0.0.1/$P1"; then
  head -c 4096 /dev/urandom >&3; exec 3>&-
fi
exec 4<>"/dev/tcp/127.0.0.1/$P1"
timeout 60 "$BIN" generate --model "$MODEL" --temperature 0 --steps 120 --transport tcp \
  --workers "$W" --secret-file "$T/secret" >"$T/again" 2>"$T/again.err"; rc=$?
exec 4>&-
if [ "$rc" -eq 0 ] && cmp -s "$T/single" "$T/again"; then
  pass "workers still serve after bad secrets and garbage bytes"
else
  fail "workers after bad input (rc=$rc): $(head -c 300 "$T/again.err")"
fi
grep -q "rejected connection" "$T/w1.log" && pass "worker logs rejected connections" \
  || fail "worker log: $(cat "$T/w1.log")"

# A worker killed before any handshake: a clear error naming it, promptly.
start_worker dead --secret-file "$T/secret"; PD=$PORT
kill -9 "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null
start=$(date +%s)
expect_error "worker killed before the handshake" "127.0.0.1:$PD" -- timeout 30 "$BIN" generate \
  --model "$MODEL" --steps 2 --transport tcp --workers "127.0.0.1:$P1,127.0.0.1:$PD" \
  --secret-file "$T/secret"
[ $(( $(date +%s) - start )) -lt 15 ] && pass "dead worker detected within 15 s" \
  || fail "dead worker took $(( $(date +%s) - start )) s"

# The root dying mid-session: the worker notices, says so, and serves the
# next root. (Workers dying are recovered from: tests/tcp_recovery_test.sh.)
start_worker survivor --secret-file "$T/secret" --model "$MODEL"; PS=$PORT
"$BIN" generate --model "$MODEL" --temperature 0 --steps 100000 --ctx 100000 --transport tcp \
  --workers "127.0.0.1:$PS" --secret-file "$T/secret" >/dev/null 2>&1 &
ROOT=$!
for _ in $(seq 400); do grep -q "session: rank 1" "$T/survivor.log" && break; sleep 0.05; done
sleep 0.2; kill -9 $ROOT; wait $ROOT 2>/dev/null
for _ in $(seq 200); do grep -q "session failed" "$T/survivor.log" && break; sleep 0.05; done
timeout 60 "$BIN" generate --model "$MODEL" --temperature 0 --steps 120 --transport tcp \
  --workers "127.0.0.1:$PS" --secret-file "$T/secret" >"$T/after_root" 2>"$T/after_root.err"; rc=$?
if grep -q "session failed: .*root" "$T/survivor.log" && [ "$rc" -eq 0 ] && cmp -s "$T/single" "$T/after_root"; then
  pass "root killed mid-session: the worker reports it and serves the next root"
else
  fail "root killed mid-session (rc=$rc): $(tail -c 300 "$T/survivor.log") $(tail -c 200 "$T/after_root.err")"
fi

[ "$fails" -eq 0 ] && exit 0 || exit 1
