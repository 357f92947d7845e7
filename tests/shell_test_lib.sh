# Shared by the shell tests of the `shardlm` binary (source it): locates the
# binary and the real model in the runfiles, and provides pass/fail counting
# and expect_error.
BIN="$TEST_SRCDIR/$TEST_WORKSPACE/tools/shardlm"
MODEL=""
for c in "$TEST_SRCDIR/models/stories260K.gguf" "$TEST_SRCDIR/$TEST_WORKSPACE/external/models/stories260K.gguf"; do
  [ -f "$c" ] && MODEL="$c" && break
done
T="$TEST_TMPDIR"
fails=0
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

# expect_error NAME EXPECTED_SUBSTRING -- CMD...: non-zero exit, exactly one
# stderr line containing the substring, nothing on stdout.
expect_error() {
  local name="$1" want="$2"; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  if [ "$rc" -ne 0 ] && [ "$lines" -eq 1 ] && grep -qF -- "$want" "$T/err" && [ ! -s "$T/out" ]; then
    pass "$name"
  else
    fail "$name (rc=$rc, stderr lines=$lines): $(head -c 300 "$T/err")"
  fi
}

# Worker processes started by start_worker; kill_workers (trap it on EXIT)
# kills and reaps them.
PIDS=()
kill_workers() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }

# start_worker NAME ARGS...: `shardlm worker` on 127.0.0.1 with 1 thread and
# a free port (ARGS may give --port); log in $T/NAME.log; sets PORT and WPID.
start_worker() {
  local name="$1"; shift
  "$BIN" worker --port 0 --bind 127.0.0.1 --threads 1 "$@" 2>"$T/$name.log" &
  WPID=$!; PIDS+=($WPID)
  PORT=""
  for _ in $(seq 400); do
    PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$T/$name.log" | head -1 | cut -d: -f2)
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  echo "worker $name did not start: $(cat "$T/$name.log")"; exit 1
}
