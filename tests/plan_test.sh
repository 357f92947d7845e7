#!/usr/bin/env bash
# End-to-end tests of `shardlm inspect PATH --plan SPEC`: the shard plan table
# for even and uneven shares, and one-line errors for impossible plans and
# malformed share specs.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"

# --- errors that need no model ---
printf 'hello, this is not a model\n' >"$T/notgguf.txt"
expect_error "--plan abc" "not an integer" -- "$BIN" inspect --plan abc "$T/notgguf.txt"
expect_error "--plan 0,1" "share 0 must be positive" -- "$BIN" inspect --plan 0,1 "$T/notgguf.txt"
expect_error "--plan empty" "empty share spec" -- "$BIN" inspect --plan= "$T/notgguf.txt"
expect_error "--plan 300" "at most 256" -- "$BIN" inspect --plan 300 "$T/notgguf.txt"
expect_error "--plan on a non-GGUF file" "not a GGUF file" -- "$BIN" inspect --plan 2 "$T/notgguf.txt"
expect_error "--plan belongs to inspect" "does not apply" -- "$BIN" generate --plan 2 --model "$T/notgguf.txt"

if [ -z "$MODEL" ]; then
  echo "SKIP: ../shared/models/stories260K.gguf is absent; model tests skipped"
  [ "$fails" -eq 0 ] && exit 0 || exit 1
fi

# node_rows FILE: the number of node rows in the plan table.
node_rows() { grep -cE '^ +[0-9]+  (\[|-)' "$1"; }

"$BIN" inspect "$MODEL" --plan 3 >"$T/out" 2>"$T/err"; rc=$?
if [ "$rc" -eq 0 ] && [ "$(node_rows "$T/out")" -eq 3 ] && grep -q "total: 48 tensors" "$T/out" \
   && grep -qE '^ +0  \[0,4\) +\[0,2\) +\[0,58\) +\[0,171\)' "$T/out" \
   && grep -qE '^total  8 +4 +172 +512 ' "$T/out" && [ ! -s "$T/err" ]; then
  pass "--plan 3 prints the inspection and 3 node rows"
else
  fail "--plan 3 (rc=$rc): $(tail -n 8 "$T/out") $(cat "$T/err")"
fi

"$BIN" inspect --plan 1,1,2 "$MODEL" >"$T/out" 2>"$T/err"; rc=$?
if [ "$rc" -eq 0 ] && [ "$(node_rows "$T/out")" -eq 3 ] && grep -q "shares 1:1:2" "$T/out" \
   && grep -qE '^ +2  \[4,8\) +\[2,4\) +\[86,172\) +\[256,512\)' "$T/out"; then
  pass "--plan 1,1,2 gives the third node half of each dimension"
else
  fail "--plan 1,1,2 (rc=$rc): $(tail -n 8 "$T/out") $(cat "$T/err")"
fi

"$BIN" inspect --plan 5 "$MODEL" >"$T/out" 2>"$T/err"; rc=$?
if [ "$rc" -eq 0 ] && [ "$(node_rows "$T/out")" -eq 5 ] && grep -q '\*' "$T/out"; then
  pass "--plan 5 replicates a KV head"
else
  fail "--plan 5 (rc=$rc): $(tail -n 8 "$T/out") $(cat "$T/err")"
fi

"$BIN" inspect "$MODEL" --plan 3 >"$T/a" 2>/dev/null
"$BIN" inspect "$MODEL" --plan 3 >"$T/b" 2>/dev/null
cmp -s "$T/a" "$T/b" && pass "the plan is deterministic" || fail "two --plan 3 runs differ"

"$BIN" inspect "$MODEL" >"$T/out" 2>/dev/null
grep -q "shard plan" "$T/out" && fail "a plan is printed without --plan" || pass "no plan without --plan"

"$BIN" inspect "$MODEL" --plan 10 >"$T/out" 2>"$T/err"; rc=$?
if [ "$rc" -eq 0 ] && [ "$(node_rows "$T/out")" -eq 10 ] \
   && grep -q "2 nodes without attention heads" "$T/out" \
   && grep -qE '^ +7  \[7,8\) +\[3,4\)\* ' "$T/out" && grep -qE '^ +9  - +- +\[155,172\) ' "$T/out" \
   && grep -qE '^total  8 +8 \(4 distinct\) +172 +512 ' "$T/out"; then
  pass "--plan 10 on 8 heads: nodes 8 and 9 hold no heads"
else
  fail "--plan 10 (rc=$rc): $(tail -n 14 "$T/out") $(cat "$T/err")"
fi
expect_error "--plan 200 on 172 ffn rows" "cannot split 172 ffn rows over 200 nodes" -- \
  "$BIN" inspect --plan 200 "$MODEL"
expect_error "--plan 0,1 on the model" "--plan 0,1" -- "$BIN" inspect --plan 0,1 "$MODEL"
expect_error "--plan abc on the model" "--plan abc" -- "$BIN" inspect --plan abc "$MODEL"

# llama3-8b's shapes (a sparse file of zero weights): 64 nodes on 32 query
# heads, nodes 32..63 hold none.
"$BIN" make-model --preset llama3-8b --type q4_0 --zeros --out "$T/l8.gguf" 2>/dev/null
"$BIN" inspect "$T/l8.gguf" --plan 64 >"$T/out" 2>"$T/err"; rc=$?
if [ "$rc" -eq 0 ] && [ "$(node_rows "$T/out")" -eq 64 ] \
   && grep -q "32 nodes without attention heads" "$T/out" \
   && grep -qE '^ +31  \[31,32\) +\[7,8\)\* ' "$T/out" && grep -qE '^ +63  - +- +\[14112,14336\) ' "$T/out" \
   && grep -qE '^total  32 +32 \(8 distinct\) +14336 +128256 ' "$T/out"; then
  pass "--plan 64 on llama3-8b shapes"
else
  fail "--plan 64 on llama3-8b (rc=$rc): $(tail -n 6 "$T/out") $(cat "$T/err")"
fi

[ "$fails" -eq 0 ] && echo "all plan checks passed" || echo "$fails plan check(s) failed"
[ "$fails" -eq 0 ]
