#!/usr/bin/env bash
# `shardlm sim` as users run it: every shipped scenario over 200 seeds with
# --check-determinism (each seed run twice, event by event), traces in JSON
# lines and Chrome format, the reproduce line of a failing seed (an injected
# sharding bug), and clean errors for bad input.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"
SCEN="$TEST_SRCDIR/$TEST_WORKSPACE/sim/scenarios"
SEEDS="${SIM_SEEDS:-1:200}"

# Scenarios find stories260K next to themselves; give them the runfiles copy.
mkdir -p "$T/scenarios"
cp "$SCEN"/*.textproto "$T/scenarios/"
[ -n "$MODEL" ] && ln -sf "$(readlink -f "$MODEL")" "$T/scenarios/stories260K.gguf"
HF=""
for c in "$TEST_SRCDIR/models/TinyStories-656K" "$TEST_SRCDIR/$TEST_WORKSPACE/external/models/TinyStories-656K"; do
  [ -f "$c/config.json" ] && HF="$(readlink -f "$c")" && break
done
if [ -n "$HF" ]; then
  # The runfiles hold the folder's files as links; give the scenarios a folder.
  mkdir -p "$T/scenarios/TinyStories-656K"
  for f in "$HF"/* "$(dirname "$(readlink -f "$HF/config.json")")"/*; do
    ln -sf "$(readlink -f "$f")" "$T/scenarios/TinyStories-656K/$(basename "$f")"
  done
fi

for s in "$T"/scenarios/*.textproto; do
  name=$(basename "$s" .textproto)
  if [ -z "$MODEL" ] && grep -q 'stories260K' "$s"; then
    echo "SKIP: $name needs ../shared/models/stories260K.gguf"; continue
  fi
  if [ -z "$HF" ] && grep -q 'TinyStories-656K' "$s"; then
    echo "SKIP: $name needs ../shared/models/TinyStories-656K"; continue
  fi
  start=$(date +%s)
  "$BIN" sim --scenario "$s" --seeds "$SEEDS" --check-determinism >"$T/$name.out" 2>"$T/$name.err"; rc=$?
  if [ "$rc" -eq 0 ] && grep -q " 0 with broken invariants" "$T/$name.out"; then
    pass "$name: seeds $SEEDS deterministic, invariants hold ($(( $(date +%s) - start )) s)"
  else
    fail "$name (rc=$rc): $(grep -v ' ok$' "$T/$name.out" | head -5) $(head -c 300 "$T/$name.err")"
  fi
done

# Traces of one run: JSON lines and a Chrome trace that parse.
"$BIN" sim --scenario "$T/scenarios/tiny_8_nodes.textproto" --seed 5 --trace "$T/t.jsonl" \
  --chrome-trace "$T/t.json" >"$T/one.out" 2>&1
if [ -s "$T/t.jsonl" ] && python3 -c "
import json,sys
lines=[json.loads(l) for l in open('$T/t.jsonl')]
c=json.load(open('$T/t.json'))
assert len(lines)==len(c['traceEvents'])>100
assert {'send','deliver'} <= {l['kind'] for l in lines}
"; then pass "traces"; else fail "traces: $(head -c 300 "$T/one.out")"; fi
grep -q "request 0: completed" "$T/one.out" && pass "single seed prints requests" \
  || fail "single seed: $(cat "$T/one.out")"

# A sharding bug behind a test flag: caught, non-zero exit, reproduce line.
"$BIN" sim --scenario "$T/scenarios/tiny_8_nodes.textproto" --seeds 7:8 --inject-plan-bug \
  >"$T/bug.out" 2>&1; rc=$?
if [ "$rc" -ne 0 ] && grep -q "held by 0 nodes" "$T/bug.out" \
  && grep -q "reproduce: shardlm sim --scenario .*tiny_8_nodes.textproto --seed 7 --inject-plan-bug" "$T/bug.out"; then
  pass "injected sharding bug caught with its seed"
else
  fail "injected bug (rc=$rc): $(cat "$T/bug.out")"
fi

printf 'cluster { nodes: 2 }\nbogus: 1\n' >"$T/bad.textproto"
expect_error "bad scenario" "line 2" -- "$BIN" sim --scenario "$T/bad.textproto"
expect_error "missing scenario" "no/such" -- "$BIN" sim --scenario "$T/no/such.textproto"
expect_error "bad seed range" "--seeds" -- "$BIN" sim --scenario "$T/bad.textproto" --seeds 9:1
expect_error "no scenario" "--scenario" -- "$BIN" sim

# Cost-model mode: every shipped cost scenario but the 1000-token ones, twice per seed.
COST="$TEST_SRCDIR/$TEST_WORKSPACE/sim/cost_scenarios"
for s in "$COST"/llama3_1b_*.textproto; do
  name=$(basename "$s" .textproto)
  "$BIN" sim --scenario "$s" --seeds 1:3 --check-determinism >"$T/$name.out" 2>&1; rc=$?
  if [ "$rc" -eq 0 ] && grep -q " 0 with broken invariants" "$T/$name.out" \
    && grep -qE "decode tok/s" "$T/$name.out"; then
    pass "cost model $name: deterministic, requests complete"
  else
    fail "cost model $name (rc=$rc): $(head -c 600 "$T/$name.out")"
  fi
done
# llama3-8b on 64 nodes (32 without attention heads), 1000 tokens: quick
# in cost mode (phases with no fault due are not simulated job by job).
"$BIN" sim --scenario "$COST/llama3_8b_64_nodes.textproto" --check-determinism >"$T/l64.out" 2>&1; rc=$?
if [ "$rc" -eq 0 ] && grep -q " 0 with broken invariants" "$T/l64.out" \
  && grep -qE "^ +42 +64 +1000 .* ok$" "$T/l64.out" && grep -q "faster than real time" "$T/l64.out"; then
  pass "cost model llama3_8b_64_nodes: deterministic, 1000 tokens"
else
  fail "cost model llama3_8b_64_nodes (rc=$rc): $(head -c 600 "$T/l64.out")"
fi
"$BIN" sim --scenario "$COST/llama3_1b_q4_0_4_recovery.textproto" >"$T/timeline.out" 2>&1
if grep -q "recovery timeline: detection .* ms; re-plan 4 -> 3 nodes with .* MB of weights" \
  "$T/timeline.out"; then
  pass "cost model recovery timeline"
else
  fail "cost model recovery timeline: $(cat "$T/timeline.out")"
fi
printf 'cores_per_host: x\n' >"$T/bad_cost.textproto"
expect_error "bad cost model" "bad_cost.textproto: line 1" -- "$BIN" sim \
  --scenario "$COST/llama3_1b_q4_0_1_loopback.textproto" --cost-model "$T/bad_cost.textproto"
expect_error "calibrate without --out" "--out" -- "$BIN" sim --calibrate

[ "$fails" -eq 0 ] && exit 0 || exit 1
