#!/usr/bin/env bash
# End-to-end tests of the `shardlm` binary as users run it: golden greedy text
# on the real model through the default-model path, clean one-line errors on
# bad input, flags and help.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"

# --- errors that need no model ---
printf 'hello, this is not a model\n' >"$T/notgguf.txt"
expect_error "inspect missing file" "no/such/file.gguf" -- "$BIN" inspect "$T/no/such/file.gguf"
expect_error "generate missing file" "no/such/file.gguf" -- "$BIN" generate --model "$T/no/such/file.gguf"
expect_error "inspect non-GGUF" "not a GGUF file" -- "$BIN" inspect "$T/notgguf.txt"
expect_error "generate non-GGUF" "not a GGUF file" -- "$BIN" generate --model "$T/notgguf.txt"
expect_error "inspect directory" "not a Hugging Face model folder" -- "$BIN" inspect "$T"
expect_error "inspect without path" "missing PATH" -- "$BIN" inspect
expect_error "unknown command" "unknown command" -- "$BIN" frobnicate
expect_error "unknown flag" "nosuchflag" -- "$BIN" generate --nosuchflag=1
expect_error "flag of another command" "does not apply" -- "$BIN" inspect --steps 3 "$T/notgguf.txt"
expect_error "negative temperature" "--temperature" -- "$BIN" generate --temperature -1 --model "$T/notgguf.txt"
expect_error "bad top-p" "--top-p" -- "$BIN" generate --top-p 1.5 --model "$T/notgguf.txt"
expect_error "negative steps" "--steps" -- "$BIN" generate --steps -2 --model "$T/notgguf.txt"
mkdir -p "$T/lonely/project"
(cd "$T/lonely/project" && expect_error "default model missing" "--model" -- "$BIN" generate)

"$BIN" --help >"$T/out" 2>&1 && grep -q generate "$T/out" && pass "--help" || fail "--help"
"$BIN" generate --help >"$T/out" 2>&1 && grep -q -- "--top-p" "$T/out" && grep -q -- "--temperature" "$T/out" \
  && pass "generate --help" || fail "generate --help"

if [ -z "$MODEL" ]; then
  echo "SKIP: ../shared/models/stories260K.gguf is absent; model tests skipped"
  [ "$fails" -eq 0 ] && exit 0 || exit 1
fi

# --- the default model, found relative to the project root ---
mkdir -p "$T/ws/project" "$T/ws/shared/models"
ln -sf "$(readlink -f "$MODEL")" "$T/ws/shared/models/stories260K.gguf"
GOLDEN="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."
(cd "$T/ws/project" && "$BIN" generate --temperature 0 --steps 200 >"$T/out" 2>"$T/err"); rc=$?
if [ "$rc" -eq 0 ] && [ "$(head -c ${#GOLDEN} "$T/out")" = "$GOLDEN" ] && [ ! -s "$T/err" ]; then
  pass "golden greedy text from the default model"
else
  fail "golden greedy text (rc=$rc): $(head -c 300 "$T/out") / $(head -c 300 "$T/err")"
fi
words=$(wc -w <"$T/out")
[ "$words" -gt 80 ] && pass "200 steps produce a long text ($words words)" || fail "200 steps gave $words words"
for mode in exact fast; do
  for isa in auto scalar; do
    (cd "$T/ws/project" && "$BIN" generate --temperature 0 --steps 100 --numerics $mode --isa $isa >"$T/out2" 2>"$T/err")
    [ "$(head -c ${#GOLDEN} "$T/out2")" = "$GOLDEN" ] && pass "golden text with --numerics $mode --isa $isa" \
      || fail "golden text with --numerics $mode --isa $isa: $(head -c 300 "$T/out2") $(cat "$T/err")"
  done
done
# --- tensor-parallel generation, N nodes as threads of this process ---
for nodes in "--nodes 3 --transport local" "--shares 1,1,2" "--nodes 12"; do
  (cd "$T/ws/project" && "$BIN" generate $nodes --temperature 0 --steps 100 >"$T/out2" 2>"$T/err")
  [ "$(head -c ${#GOLDEN} "$T/out2")" = "$GOLDEN" ] && [ ! -s "$T/err" ] && pass "golden text with $nodes" \
    || fail "golden text with $nodes: $(head -c 300 "$T/out2") $(cat "$T/err")"
done
"$BIN" generate --model "$MODEL" --nodes 1 --seed 5 --steps 60 >"$T/a" 2>/dev/null
"$BIN" generate --model "$MODEL" --nodes 2 --seed 5 --steps 60 >"$T/b" 2>/dev/null
[ -s "$T/a" ] && cmp -s "$T/a" "$T/b" && pass "sampled text on 2 nodes equals 1 node" \
  || fail "sampled text on 2 nodes differs: $(head -c 200 "$T/a") / $(head -c 200 "$T/b")"
"$BIN" generate --model "$MODEL" --shares 1,1,2 --steps 5 --stats >/dev/null 2>"$T/err"
grep -q "nodes 3 (shares 1:1:2)" "$T/err" && pass "--stats names the nodes" || fail "--stats: $(cat "$T/err")"
# More nodes than the 8 query heads: nodes 8 and 9 hold none, same text.
"$BIN" generate --model "$MODEL" --nodes 10 --seed 5 --steps 60 >"$T/c" 2>/dev/null
[ -s "$T/a" ] && cmp -s "$T/a" "$T/c" && pass "sampled text on 10 nodes equals 1 node" \
  || fail "sampled text on 10 nodes differs: $(head -c 200 "$T/a") / $(head -c 200 "$T/c")"
"$BIN" generate --model "$MODEL" --nodes 1 --temperature 0 --steps 60 >"$T/a" 2>/dev/null
"$BIN" generate --model "$MODEL" --nodes 10 --temperature 0 --steps 60 >"$T/c" 2>/dev/null
[ -s "$T/a" ] && cmp -s "$T/a" "$T/c" && pass "greedy text on 10 nodes equals 1 node" \
  || fail "greedy text on 10 nodes differs: $(head -c 200 "$T/a") / $(head -c 200 "$T/c")"
expect_error "more nodes than the model splits into" "cannot split 172 ffn rows over 200 nodes" -- \
  "$BIN" generate --nodes 200 --model "$MODEL"
expect_error "tcp transport without workers" "needs --workers" -- "$BIN" generate --transport tcp --nodes 2 --model "$MODEL"
expect_error "--shares disagrees with --nodes" "the cluster has 2" -- "$BIN" generate --nodes 2 --shares 1,1,2 --model "$MODEL"
expect_error "exact numerics with a float wire" "--wire q8_0" -- "$BIN" generate --nodes 2 --wire q8_0 --model "$MODEL"
expect_error "unknown wire format" "--wire" -- "$BIN" generate --nodes 2 --numerics fast --wire f8 --model "$MODEL"
expect_error "unknown all-reduce" "--allreduce" -- "$BIN" generate --nodes 2 --allreduce tree --model "$MODEL"
"$BIN" generate --nodes 2 --numerics fast --wire q8_0 --temperature 0 --steps 20 --model "$MODEL" >"$T/out" 2>"$T/err" \
  && [ -s "$T/out" ] && pass "fast numerics on 2 nodes, q8_0 wire" || fail "fast numerics on a cluster: $(cat "$T/err")"
expect_error "bad --shares" "--shares" -- "$BIN" generate --shares 1,x --model "$MODEL"
expect_error "negative --top-k" "--top-k" -- "$BIN" generate --top-k -1 --model "$MODEL"
expect_error "bad --numerics" "--numerics" -- "$BIN" generate --numerics sloppy --model "$MODEL"
expect_error "bad --isa" "bogus" -- "$BIN" generate --isa bogus --model "$MODEL"

# --- prompts ---
"$BIN" generate --model "$MODEL" --temperature 0 --steps 20 --prompt "Once upon a time" >"$T/out" 2>"$T/err"
grep -q "^Once upon a time, there was a little girl named Lily" "$T/out" && pass "prompt is echoed and continued" \
  || fail "prompt continuation: $(cat "$T/out")"
"$BIN" generate --model "$MODEL" --steps 30 --seed 7 --prompt "The cat" >"$T/a" 2>/dev/null
"$BIN" generate --model "$MODEL" --steps 30 --seed 7 --prompt "The cat" >"$T/b" 2>/dev/null
"$BIN" generate --model "$MODEL" --steps 30 --seed 8 --temperature 1.5 --prompt "The cat" >"$T/c" 2>/dev/null
cmp -s "$T/a" "$T/b" && pass "same seed, same text" || fail "same seed gave different text"
cmp -s "$T/a" "$T/c" && fail "different seed and temperature gave the same text" || pass "different seed, different text"
"$BIN" generate --model "$MODEL" --steps 10 --stats --threads 1 >"$T/out" 2>"$T/err"
grep -q "decode: 10 tokens" "$T/err" && grep -q "tokens/s" "$T/err" && pass "--stats on stderr" \
  || fail "--stats: $(cat "$T/err")"
"$BIN" generate --model "$MODEL" --steps 0 --prompt "Hi there" >"$T/out" 2>"$T/err"
[ "$(cat "$T/out")" = "Hi there" ] && pass "--steps 0 prints the prompt only" || fail "--steps 0: $(cat "$T/out")"

# --- inspect ---
"$BIN" inspect "$MODEL" >"$T/out" 2>"$T/err"
if grep -q "GGUF v3" "$T/out" && grep -q "token_embd.weight" "$T/out" && grep -q "\[64, 512\]" "$T/out" \
   && grep -q "general.architecture" "$T/out" && grep -q "total: 48 tensors" "$T/out" \
   && grep -q "vocab 512" "$T/out"; then
  pass "inspect real model"
else
  fail "inspect: $(head -c 500 "$T/out")"
fi

# --- truncated and corrupted copies of the real model ---
head -c 2 "$MODEL" >"$T/trunc.gguf"
expect_error "inspect truncated at 2" "too short" -- "$BIN" inspect "$T/trunc.gguf"
for n in 20 200 5000 14160 600000; do
  head -c "$n" "$MODEL" >"$T/trunc.gguf"
  expect_error "inspect truncated at $n" "truncated" -- "$BIN" inspect "$T/trunc.gguf"
  expect_error "generate truncated at $n" "truncated" -- "$BIN" generate --model "$T/trunc.gguf"
done
# A copy whose tensor table points past the end of the data.
python3 - "$MODEL" "$T/badoffset.gguf" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
i = data.index(b"blk.4.ffn_norm.weight") + len(b"blk.4.ffn_norm.weight")
i += 4 + 8 + 4  # n_dims, one dim, type
data[i:i + 8] = (1 << 40).to_bytes(8, "little")
open(sys.argv[2], "wb").write(data)
PY
expect_error "inspect tensor out of bounds" "blk.4.ffn_norm.weight" -- "$BIN" inspect "$T/badoffset.gguf"

[ "$fails" -eq 0 ] && echo "all CLI checks passed" || echo "$fails CLI check(s) failed"
[ "$fails" -eq 0 ]
