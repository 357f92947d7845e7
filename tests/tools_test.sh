#!/usr/bin/env bash
# End-to-end tests of the model tools as users run them: `make-model`
# (presets, types, reproducible files), `bench` (JSON and table), `quantize`
# on the real model (types per tensor, generation from the result), and
# clean one-line errors on bad input.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"

# tensor_type FILE TENSOR: the type `inspect` shows for TENSOR.
tensor_type() {
  "$BIN" inspect "$1" 2>/dev/null | awk -v t="$2" '$1 == t { print $2 }'
}

# expect_type NAME FILE TENSOR TYPE
expect_type() {
  local got; got=$(tensor_type "$2" "$3")
  [ "$got" = "$4" ] && pass "$1: $3 is $4" || fail "$1: $3 is '$got', want $4"
}

# last_stderr_line: the summary after the '\r' progress updates.
last_stderr_line() { tr '\r' '\n' <"$T/err" | grep -v '^ *$' | tail -n 1; }

# --- make-model ---
"$BIN" make-model --list >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^tiny " "$T/out" && grep -q "^llama3-1b " "$T/out" \
   && grep -q "^llama3-8b .*8.03 B" "$T/out" && grep -q "^llama2-7b .*6.74 B" "$T/out" \
   && grep -q "q4_0" "$T/out"; then
  pass "make-model --list"
else
  fail "make-model --list: $(cat "$T/out" "$T/err")"
fi

"$BIN" make-model --preset tiny --type q4_0 --out "$T/tiny_q4.gguf" >"$T/out" 2>"$T/err"; rc=$?
if [ "$rc" -eq 0 ] && [ ! -s "$T/out" ] && last_stderr_line | grep -q "^wrote .*tiny_q4.gguf: tiny, q4_0"; then
  pass "make-model tiny q4_0"
else
  fail "make-model tiny q4_0 (rc=$rc): $(cat "$T/err")"
fi
expect_type "tiny q4_0" "$T/tiny_q4.gguf" blk.0.attn_q.weight q4_0
expect_type "tiny q4_0" "$T/tiny_q4.gguf" token_embd.weight q4_0
expect_type "tiny q4_0" "$T/tiny_q4.gguf" blk.1.ffn_down.weight q4_0
expect_type "tiny q4_0" "$T/tiny_q4.gguf" blk.0.attn_norm.weight f32
[ ! -e "$T/tiny_q4.gguf.partial" ] && pass "no .partial left" || fail ".partial left behind"

"$BIN" make-model --preset tiny --out "$T/tiny_f32.gguf" 2>"$T/err" \
  && pass "make-model tiny (default f32)" || fail "make-model tiny f32: $(cat "$T/err")"
expect_type "tiny f32" "$T/tiny_f32.gguf" blk.0.attn_q.weight f32
expect_type "tiny f32" "$T/tiny_f32.gguf" output.weight f32
"$BIN" inspect "$T/tiny_f32.gguf" | grep -q "model: llama: dim 64" && pass "tiny is a llama model" \
  || fail "tiny inspect: $("$BIN" inspect "$T/tiny_f32.gguf" | tail -n 2)"

"$BIN" make-model --preset tiny --type q4_0 --seed 42 --out "$T/tiny_q4_again.gguf" 2>/dev/null
cmp -s "$T/tiny_q4.gguf" "$T/tiny_q4_again.gguf" && pass "same seed, identical file" \
  || fail "same seed gave different files"
"$BIN" make-model --preset tiny --type q4_0 --seed=7 --out "$T/tiny_q4_s7.gguf" 2>/dev/null
"$BIN" make-model --preset tiny --type q4_0 --seed 7 --out "$T/tiny_q4_s7b.gguf" 2>/dev/null
cmp -s "$T/tiny_q4_s7.gguf" "$T/tiny_q4_s7b.gguf" && pass "--seed=7 and --seed 7 agree" \
  || fail "--seed 7 twice gave different files"
cmp -s "$T/tiny_q4.gguf" "$T/tiny_q4_s7.gguf" && fail "seeds 1 and 7 gave the same file" \
  || pass "different seed, different weights"

# Quantizing the f32 model gives the file make-model writes for that type.
for type in q8_0 q4_0; do
  "$BIN" make-model --preset tiny --type "$type" --out "$T/tiny_made_$type.gguf" 2>/dev/null
  "$BIN" quantize "$T/tiny_f32.gguf" "$T/tiny_quantized_$type.gguf" --type "$type" 2>/dev/null
  cmp -s "$T/tiny_made_$type.gguf" "$T/tiny_quantized_$type.gguf" \
    && pass "quantize f32 -> $type matches make-model --type $type byte for byte" \
    || fail "quantize f32 -> $type differs from make-model --type $type"
done

# --- bench ---
"$BIN" bench --model "$T/tiny_f32.gguf" --json --prompt-tokens 16 --decode-tokens 8 --threads 2 \
  --rounds 3 >"$T/bench.json" 2>"$T/err"; rc=$?
if [ "$rc" -eq 0 ] && python3 - "$T/bench.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
assert text.count("\n") == 1, "not one line"
r = json.loads(text)
for key in ("model", "backend", "prefill_tokens_per_s", "decode_tokens_per_s", "ms_per_token",
            "weight_mb_per_token", "effective_gb_per_s", "measured_bandwidth_gb_per_s",
            "bandwidth_fraction"):
    assert key in r, key
assert r["decode_tokens_per_s"] > 0 and r["prefill_tokens_per_s"] > 0
assert r["measured_bandwidth_gb_per_s"] > 0 and r["bandwidth_fraction"] > 0
assert r["prompt_tokens"] == 16 and r["decode_tokens"] == 8
# --rounds 3: three decode rounds, each paired with a bandwidth reading; the
# fraction is the median of the rounds' ratios.
probes, fractions = r["round_measured_gb_per_s"], r["round_fractions"]
assert len(probes) == 3 and len(fractions) == 3, (probes, fractions)
assert all(p > 0 for p in probes) and all(f > 0 for f in fractions)
assert abs(r["bandwidth_fraction"] - sorted(fractions)[1]) < 1e-4 * r["bandwidth_fraction"]
assert abs(r["measured_bandwidth_gb_per_s"] - sorted(probes)[1]) < 1e-4 * sorted(probes)[1]
# tiny: every tensor but the embedding table (512 x 64 f32) plus one row of it.
assert abs(r["weight_mb_per_token"] - 0.525824) < 1e-6, r["weight_mb_per_token"]
PY
then
  pass "bench --json: $(cat "$T/bench.json")"
else
  fail "bench --json (rc=$rc): $(cat "$T/bench.json" "$T/err")"
fi
"$BIN" bench --model "$T/tiny_q4.gguf" --prompt-tokens 8 --decode-tokens 4 --warmup 0 >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^decode tokens/s" "$T/out" && grep -q "^measured GB/s" "$T/out" \
   && grep -q "^fraction of bandwidth" "$T/out"; then
  pass "bench table"
else
  fail "bench table: $(cat "$T/out" "$T/err")"
fi

# --- errors ---
expect_error "make-model bad --type" "--type" -- "$BIN" make-model --preset tiny --type q5_1 --out "$T/x.gguf"
expect_error "make-model missing --out" "--out" -- "$BIN" make-model --preset tiny
expect_error "make-model missing --preset" "--preset" -- "$BIN" make-model --out "$T/x.gguf"
expect_error "make-model unknown preset" "tiny, small, llama3-1b, llama2-7b, llama3-8b" -- \
  "$BIN" make-model --preset llama9 --out "$T/x.gguf"
expect_error "make-model flag of another command" "does not apply" -- \
  "$BIN" make-model --preset tiny --out "$T/x.gguf" --steps 3
[ ! -e "$T/x.gguf" ] && pass "failed make-model wrote nothing" || fail "failed make-model left $T/x.gguf"
expect_error "quantize bad --type" "--type" -- "$BIN" quantize "$T/tiny_f32.gguf" "$T/y.gguf" --type f16
expect_error "quantize missing --type" "--type" -- "$BIN" quantize "$T/tiny_f32.gguf" "$T/y.gguf"
expect_error "quantize missing OUT" "expected IN and OUT" -- "$BIN" quantize "$T/tiny_f32.gguf" --type q8_0
expect_error "quantize of a quantized file" "input must be f32/f16/bf16" -- \
  "$BIN" quantize "$T/tiny_q4.gguf" "$T/y.gguf" --type q8_0
cp "$T/tiny_f32.gguf" "$T/tiny_f32_copy.gguf"
expect_error "quantize IN == OUT" "is the input file" -- \
  "$BIN" quantize "$T/tiny_f32.gguf" "$T/tiny_f32.gguf" --type q8_0
cmp -s "$T/tiny_f32.gguf" "$T/tiny_f32_copy.gguf" && pass "IN left intact" || fail "IN == OUT changed IN"
expect_error "quantize missing input" "no/such.gguf" -- "$BIN" quantize "$T/no/such.gguf" "$T/y.gguf" --type q8_0
[ ! -e "$T/y.gguf" ] && [ ! -e "$T/y.gguf.partial" ] && pass "failed quantize wrote nothing" \
  || fail "failed quantize left a file"
expect_error "bench missing model" "no/such.gguf" -- "$BIN" bench --model "$T/no/such.gguf"
expect_error "bench --decode-tokens 0" "--decode-tokens" -- "$BIN" bench --model "$T/tiny_f32.gguf" --decode-tokens 0
expect_error "bench --rounds 0" "--rounds" -- "$BIN" bench --model "$T/tiny_f32.gguf" --rounds 0
expect_error "bench beyond the context" "context" -- \
  "$BIN" bench --model "$T/tiny_f32.gguf" --prompt-tokens 250 --decode-tokens 10
"$BIN" quantize --help >"$T/out" 2>&1 && grep -q -- "--type" "$T/out" && pass "quantize --help" \
  || fail "quantize --help: $(cat "$T/out")"
"$BIN" bench --help >"$T/out" 2>&1 && grep -q -- "--prompt-tokens" "$T/out" && grep -q -- "--threads" "$T/out" \
  && pass "bench --help" || fail "bench --help: $(cat "$T/out")"

if [ -z "$MODEL" ]; then
  echo "SKIP: ../shared/models/stories260K.gguf is absent; real-model tests skipped"
  [ "$fails" -eq 0 ] && exit 0 || exit 1
fi

# --- quantize the real model ---
for type in q8_0 q4_0; do
  out="$T/stories260K-$type.gguf"
  "$BIN" quantize "$MODEL" "$out" --type "$type" >"$T/out" 2>"$T/err"; rc=$?
  summary=$(last_stderr_line)
  if [ "$rc" -eq 0 ] && [ ! -s "$T/out" ] \
     && echo "$summary" | grep -qE "^quantized [0-9]+ tensors \([0-9]+ kept as f32\), [0-9.]+ MiB -> [0-9.]+ MiB in [0-9.]+ s"; then
    pass "quantize $type: $summary"
  else
    fail "quantize $type (rc=$rc): $(cat "$T/err")"
  fi
  expect_type "stories260K $type" "$out" blk.0.attn_q.weight "$type"
  expect_type "stories260K $type" "$out" token_embd.weight "$type"
  expect_type "stories260K $type" "$out" blk.0.ffn_down.weight f32
  expect_type "stories260K $type" "$out" blk.0.ffn_norm.weight f32
  "$BIN" inspect "$out" >"$T/inspect.txt"
  grep -qE "general.file_type +$([ "$type" = q8_0 ] && echo 7 || echo 2)\$" "$T/inspect.txt" \
    && pass "$type general.file_type" || fail "$type general.file_type: $("$BIN" inspect "$out" | grep file_type)"
  "$BIN" generate --model "$out" --temperature 0 --steps 60 >"$T/gen" 2>"$T/err"; rc=$?
  words=$(wc -w <"$T/gen")
  # Fluent-looking: enough words, mostly plain lower-case English letters.
  letters=$(tr -cd 'a-z' <"$T/gen" | wc -c)
  chars=$(tr -d ' \n' <"$T/gen" | wc -c)
  if [ "$rc" -eq 0 ] && [ "$words" -ge 20 ] && [ "$((letters * 10))" -ge "$((chars * 7))" ]; then
    pass "generate from $type ($words words): $(head -c 120 "$T/gen")"
  else
    fail "generate from $type (rc=$rc, $words words): $(head -c 300 "$T/gen") $(head -c 300 "$T/err")"
  fi
done

[ "$fails" -eq 0 ] && echo "all tools checks passed" || echo "$fails tools check(s) failed"
[ "$fails" -eq 0 ]
