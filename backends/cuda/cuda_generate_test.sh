#!/usr/bin/env bash
# GPU runtime test (tag "gpu"): stories260K generation with --backend cuda
# prints exactly what --backend cpu prints in exact numerics (greedy and
# sampled), and something in fast numerics.
set -uo pipefail
source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"
if [ -z "$MODEL" ]; then echo "SKIP: no stories260K model"; exit 0; fi
if ! "$BIN" generate --model "$MODEL" --backend cuda --steps 1 >/dev/null 2>"$T/probe"; then
  echo "SKIP: $(cat "$T/probe")"; exit 0
fi

for args in "--temperature 0" "--temperature 0.8 --seed 7"; do
  "$BIN" generate --model "$MODEL" --prompt "Once upon a time" --steps 64 $args \
    --backend cpu >"$T/cpu.txt" 2>"$T/cpu.err"
  "$BIN" generate --model "$MODEL" --prompt "Once upon a time" --steps 64 $args \
    --backend cuda >"$T/cuda.txt" 2>"$T/cuda.err"
  if [ -s "$T/cpu.txt" ] && cmp -s "$T/cpu.txt" "$T/cuda.txt"; then
    pass "exact $args: cuda == cpu"
  else
    fail "exact $args: cpu '$(head -c 200 "$T/cpu.txt")' cuda '$(head -c 200 "$T/cuda.txt")' $(cat "$T/cuda.err")"
  fi
done

# A mixed cluster: node 0 cpu... (in-process nodes share one backend name,
# so compare a 2-node cuda cluster with the single cpu node instead).
"$BIN" generate --model "$MODEL" --prompt "Once upon a time" --steps 32 --temperature 0 \
  --backend cuda --nodes 2 --transport local >"$T/tp.txt" 2>"$T/tp.err"
"$BIN" generate --model "$MODEL" --prompt "Once upon a time" --steps 32 --temperature 0 \
  --backend cpu >"$T/cpu32.txt" 2>/dev/null
cmp -s "$T/tp.txt" "$T/cpu32.txt" && pass "2-node cuda == cpu" || fail "2-node cuda: $(cat "$T/tp.err")"

"$BIN" generate --model "$MODEL" --prompt "Once upon a time" --steps 32 --temperature 0 \
  --backend cuda --numerics fast >"$T/fast.txt" 2>"$T/fast.err"
[ -s "$T/fast.txt" ] && pass "fast numerics generates" || fail "fast: $(cat "$T/fast.err")"

[ "$fails" -eq 0 ]
