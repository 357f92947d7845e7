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
