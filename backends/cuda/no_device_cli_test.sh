#!/usr/bin/env bash
# `shardlm generate --backend cuda` without a usable GPU (this machine kind)
# or without --config=cuda: exit 1, one stderr line, nothing on stdout.
set -uo pipefail
source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"

if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  echo "SKIP: a GPU is present"; exit 0
fi
if [ -z "$MODEL" ]; then echo "SKIP: no stories260K model"; exit 0; fi

"$BIN" generate --model "$MODEL" --backend cuda --steps 2 >"$T/out" 2>"$T/err"; rc=$?
lines=$(wc -l <"$T/err")
if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && [ ! -s "$T/out" ] &&
   grep -qE "^shardlm generate: error: (cuda backend: no usable CUDA device: .+|this build has no CUDA backend; rebuild with --config=cuda)$" "$T/err"; then
  pass "generate --backend cuda: $(cat "$T/err")"
else
  fail "generate --backend cuda (rc=$rc, lines=$lines): $(head -c 400 "$T/err")"
fi

expect_error "bench --backend cuda" "CUDA" -- "$BIN" bench --model "$MODEL" --backend cuda
expect_error "--device -1" "--device must be >= 0" -- "$BIN" generate --model "$MODEL" --backend cuda --device -1

[ "$fails" -eq 0 ]
