#!/usr/bin/env bash
# `shardlm serve` end to end on stories260K over 2 in-process nodes, driven
# with curl, the official OpenAI Node client and a 50-client load: the
# greedy reference text (streamed pieces concatenate to it), stop strings,
# seeded sampling equal to generate's, OpenAI-shaped errors with the right
# status (the server keeps serving), a client that disconnects mid-stream,
# /health, /metrics, flag errors, SIGTERM finishing the stream in flight,
# and over tcp a worker killed mid-stream (the stream goes on).
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"
SERVER=""
stop_server() {
  [ -n "$SERVER" ] && { kill -9 "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; }
  SERVER=""
}
trap 'stop_server; kill_workers' EXIT

# --- flag errors (no model needed) ---
expect_error "port out of range" "--port" -- "$BIN" serve --port 70000 --model "$T/none.gguf"
expect_error "unknown chat template" "vicuna" -- "$BIN" serve --chat-template vicuna --model "$T/none.gguf"
expect_error "unknown flag" "nosuchflag" -- "$BIN" serve --nosuchflag=1
expect_error "flag of another command" "does not apply" -- "$BIN" serve --steps 3
"$BIN" serve --help >"$T/out" 2>&1 && grep -q -- "--port (int32, default 8080)" "$T/out" \
  && grep -q -- "--host" "$T/out" && grep -q -- "--chat-template" "$T/out" \
  && pass "serve --help" || fail "serve --help: $(cat "$T/out")"
"$BIN" worker --help 2>&1 | grep -q -- "--port (int32, default 9090)" && pass "worker keeps --port 9090" \
  || fail "worker --port default"

if [ -z "$MODEL" ]; then
  echo "SKIP: ../shared/models/stories260K.gguf is absent; server tests skipped"
  [ "$fails" -eq 0 ] && exit 0 || exit 1
fi

# json FILE EXPR: a Python expression over the JSON in FILE (as d).
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# sse_text FILE: the streamed text (completions' text or chat deltas) of an
# SSE body, after checking it ends with [DONE]; "BAD" otherwise.
sse_text() {
  python3 - "$1" <<'PY'
import json, sys
events = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
if not events or events[-1] != "[DONE]": print("BAD"); sys.exit()
out = ""
for e in events[:-1]:
    for c in json.loads(e).get("choices", []):
        out += c.get("text") or (c.get("delta") or {}).get("content") or ""
sys.stdout.write(out)
PY
}
# post PATH BODY [OUT]: POSTs JSON, body to OUT ($T/resp), prints the status.
post() {
  curl -s --max-time 30 -o "${3:-$T/resp}" -w '%{http_code}' -H 'Content-Type: application/json' \
    "$URL$1" -d "$2"
}

# start_server LOG ARGS...: `shardlm serve` on a free loopback port, stderr
# to LOG; sets SERVER (pid) and URL, or fails the test.
start_server() {
  local log="$1"; shift
  "$BIN" serve --model "$MODEL" --port 0 "$@" 2>"$log" &
  SERVER=$!
  URL=""
  for _ in $(seq 200); do
    URL=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | head -1 | cut -d' ' -f3)
    [ -n "$URL" ] && return 0
    sleep 0.05
  done
  fail "server did not start: $(cat "$log")"; exit 1
}

start_server "$T/serve.log" --nodes 2 --threads 2
PORT=${URL##*:}
pass "serving at $URL"

expect_error "port in use" "cannot listen on 127.0.0.1:$PORT" -- timeout 20 "$BIN" serve --model "$MODEL" --port "$PORT"

# --- the reference text, whole and streamed ---
"$BIN" generate --model "$MODEL" --nodes 2 --temperature 0 --steps 120 >"$T/want" 2>/dev/null
WANT=$(cat "$T/want")  # generate prints prompt ("") + text + newline
GOLDEN="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."
code=$(post /v1/completions '{"model":"stories260K","prompt":"","max_tokens":120,"temperature":0}')
text=$(json "$T/resp" 'd["choices"][0]["text"]')
if [ "$code" = 200 ] && [ "$text" = "$WANT" ] && [ "${text:0:${#GOLDEN}}" = "$GOLDEN" ]; then
  pass "completion at temperature 0 is the reference text"
else
  fail "completion ($code): $(head -c 400 "$T/resp")"
fi
[ "$(json "$T/resp" 'd["usage"]["completion_tokens"], d["usage"]["prompt_tokens"], d["object"]')" = "(120, 1, 'text_completion')" ] \
  && pass "usage counts" || fail "usage: $(head -c 300 "$T/resp")"
code=$(post /v1/completions '{"prompt":"","max_tokens":120,"temperature":0,"stream":true}' "$T/sse")
streamed=$(sse_text "$T/sse")
pieces=$(grep -c '^data: {' "$T/sse")
[ "$code" = 200 ] && [ "$streamed" = "$WANT" ] && [ "$pieces" -gt 50 ] \
  && pass "streamed pieces ($pieces events) concatenate to the same text" \
  || fail "stream ($code): $(head -c 400 "$T/sse")"

# --- a prompt, stop strings, seeded sampling ---
"$BIN" generate --model "$MODEL" --prompt "Once upon a time" --temperature 0 --steps 30 >"$T/want2" 2>/dev/null
post /v1/completions '{"prompt":"Once upon a time","max_tokens":30,"temperature":0}' >/dev/null
[ "Once upon a time$(json "$T/resp" 'd["choices"][0]["text"]')" = "$(cat "$T/want2")" ] \
  && pass "completion of a prompt equals generate --prompt" || fail "prompt: $(head -c 300 "$T/resp") vs $(cat "$T/want2")"
STOP='{"prompt":"","max_tokens":100,"temperature":0,"stop":["Lily","zzz"]'
post /v1/completions "$STOP}" >/dev/null
[ "$(json "$T/resp" 'd["choices"][0]["text"], d["choices"][0]["finish_reason"]')" = "('Once upon a time, there was a little girl named ', 'stop')" ] \
  && pass "stop string cuts the text" || fail "stop: $(head -c 300 "$T/resp")"
post /v1/completions "$STOP,\"stream\":true}" "$T/sse" >/dev/null
[ "$(sse_text "$T/sse")" = "Once upon a time, there was a little girl named " ] && ! grep -q '"L' "$T/sse" \
  && pass "streamed stop string: no partial match leaks" || fail "streamed stop: $(cat "$T/sse")"
"$BIN" generate --model "$MODEL" --nodes 2 --temperature 0.8 --top-p 0.95 --seed 5 --steps 50 >"$T/want3" 2>/dev/null
for i in 1 2; do
  post /v1/completions '{"prompt":"","max_tokens":50,"temperature":0.8,"top_p":0.95,"seed":5}' "$T/s$i" >/dev/null
done
t1=$(json "$T/s1" 'd["choices"][0]["text"]'); t2=$(json "$T/s2" 'd["choices"][0]["text"]')
[ -n "$t1" ] && [ "$t1" = "$t2" ] && [ "$t1" = "$(cat "$T/want3")" ] \
  && pass "seeded sampling is deterministic and equals generate --seed" \
  || fail "seeded: $t1 / $t2 / $(cat "$T/want3")"

# --- chat, whole and streamed ---
CHAT='{"model":"stories260K","messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":"A story about a dog."}],"max_tokens":40,"temperature":0'
code=$(post /v1/chat/completions "$CHAT}")
chat=$(json "$T/resp" 'd["choices"][0]["message"]["content"]')
post /v1/chat/completions "$CHAT,\"stream\":true}" "$T/sse" >/dev/null
[ "$code" = 200 ] && [ -n "$chat" ] && [ "$(sse_text "$T/sse")" = "$chat" ] \
  && grep -q '"role":"assistant"' "$T/sse" && pass "chat: streamed deltas equal the whole reply" \
  || fail "chat ($code): $(head -c 300 "$T/resp") / $(head -c 300 "$T/sse")"

# --- errors: status, OpenAI error JSON, still serving ---
check_error() {  # NAME WANT_CODE CODE
  if [ "$3" = "$2" ] && [ -n "$(json "$T/resp" 'd["error"]["message"]' 2>/dev/null)" ]; then
    pass "$1: HTTP $3 with an error object"
  else
    fail "$1: HTTP $3 (want $2): $(head -c 300 "$T/resp")"
  fi
}
check_error "malformed JSON" 400 "$(post /v1/chat/completions '{"messages": [')"
check_error "missing messages" 400 "$(post /v1/chat/completions '{"model":"stories260K"}')"
check_error "bad temperature" 400 "$(post /v1/completions '{"prompt":"x","temperature":-1}')"
check_error "unknown model" 404 "$(post /v1/chat/completions '{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}')"
check_error "unknown route" 404 "$(curl -s -o "$T/resp" -w '%{http_code}' "$URL/v1/engines")"
head -c 10485760 /dev/zero | tr '\0' 'x' >"$T/big"
check_error "10 MB body" 413 "$(curl -s --max-time 30 -o "$T/resp" -w '%{http_code}' "$URL/v1/completions" --data-binary @"$T/big")"
code=$(post /v1/completions '{"prompt":"","max_tokens":5,"temperature":0}')
[ "$code" = 200 ] && [ "$(json "$T/resp" 'd["choices"][0]["text"]')" = "Once upon a time," ] \
  && pass "still serving after the errors" || fail "after errors ($code): $(head -c 300 "$T/resp")"

# --- a client that disconnects mid-stream frees its slot ---
curl -sN --max-time 30 "$URL/v1/completions" -d '{"prompt":"","max_tokens":2000,"ignore_eos":true,"stream":true}' \
  | head -c 300 >/dev/null
for _ in $(seq 100); do grep -q "client went away" "$T/serve.log" && break; sleep 0.05; done
n=$(grep -o "client went away after [0-9]* tokens" "$T/serve.log" | grep -o '[0-9]*' | head -1)
[ -n "$n" ] && [ "$n" -lt 2000 ] && pass "disconnected stream stopped after $n of 2000 tokens" \
  || fail "disconnect: $(tail -5 "$T/serve.log")"

# --- health and metrics ---
curl -s "$URL/health" >"$T/resp"
[ "$(json "$T/resp" 'd["status"], d["cluster"]["nodes"], len(d["cluster"]["node_stats"])')" = "('ok', 2, 2)" ] \
  && pass "/health: ok, 2 nodes" || fail "/health: $(cat "$T/resp")"
curl -s "$URL/metrics" >"$T/metrics"
grep -q '^shardlm_node_sync_seconds{node="1"} ' "$T/metrics" \
  && grep -q '^shardlm_http_requests_total{route="/v1/completions",code="413"} 1' "$T/metrics" \
  && grep -q '^shardlm_generations_cancelled_total 1' "$T/metrics" \
  && grep -q '^shardlm_tokens_per_second{window="avg"} ' "$T/metrics" \
  && pass "/metrics: requests, tokens/s, per-node sync time, cancellations" \
  || fail "/metrics: $(head -c 1500 "$T/metrics")"
curl -s "$URL/v1/models" >"$T/resp"
[ "$(json "$T/resp" 'd["data"][0]["id"]')" = stories260K ] && pass "/v1/models" || fail "/v1/models: $(cat "$T/resp")"
grep -q 'POST /v1/completions 200' "$T/serve.log" && pass "requests are logged" || fail "no request log"

# --- the official OpenAI Node client, and 50 concurrent clients ---
NODE_MODULES="$(dirname "$(readlink -f "$TEST_SRCDIR/$TEST_WORKSPACE/third_party/node/package.json")")/node_modules"
if ! command -v node >/dev/null || [ ! -d "$NODE_MODULES/openai" ]; then
  echo "SKIP: node or the openai package (./setup.sh installs it) is missing; client tests skipped"
else
  timeout 60 node "$TEST_SRCDIR/$TEST_WORKSPACE/tests/serve_openai_client.js" "$NODE_MODULES" "$URL/v1" stories260K >"$T/resp" 2>&1
  if [ "$(json "$T/resp" 'd["chat"] == d["streamed"] != "", d["finish"], d["usage"]["completion_tokens"] == d["chat_usage"]["completion_tokens"]')" = "(True, 'length', True)" ]; then
    pass "OpenAI Node client: chat and streamed chat agree ($(json "$T/resp" 'd["chunks"]') chunks)"
  else
    fail "OpenAI Node client: $(head -c 500 "$T/resp")"
  fi
  timeout 90 node "$TEST_SRCDIR/$TEST_WORKSPACE/tests/serve_load.js" "$URL" 50 2 32 >"$T/load" 2>&1
  if [ "$(json "$T/load" 'd["completed"], d["failed"]')" = "(100, 0)" ]; then
    pass "50 concurrent clients, 100 requests: $(cat "$T/load")"
  else
    fail "load: $(head -c 500 "$T/load")"
  fi
fi

# --- SIGTERM: the stream in flight finishes, then the server exits 0 ---
curl -sN --max-time 30 "$URL/v1/completions" -d '{"prompt":"","max_tokens":1500,"ignore_eos":true,"stream":true}' >"$T/last" &
CURL=$!
for _ in $(seq 100); do [ -s "$T/last" ] && break; sleep 0.02; done
kill -TERM "$SERVER"
wait "$CURL"
timeout 20 tail --pid="$SERVER" -f /dev/null; wait "$SERVER"; rc=$?
SERVER=""
events=$(grep -c '^data: {' "$T/last")
[ "$rc" -eq 0 ] && [ "$(tail -2 "$T/last" | head -1)" = "data: [DONE]" ] \
  && grep -q '"finish_reason":"length"' "$T/last" && grep -q "1500 generated tokens" "$T/serve.log" \
  && pass "SIGTERM: the stream in flight finished (1500 tokens, $events events), exit 0" \
  || fail "SIGTERM (rc=$rc, $events events): $(tail -c 300 "$T/last") $(tail -3 "$T/serve.log")"

# --- over tcp: a worker killed mid-stream; the stream goes on, same text ---
start_worker a --model "$MODEL"; PA=$PORT; WA=$WPID
start_worker b --model "$MODEL"; PB=$PORT
start_server "$T/tcp.log" --transport tcp --workers "127.0.0.1:$PA,127.0.0.1:$PB" --threads 1 \
  --cluster-timeout-s 5
LONG='{"prompt":"","max_tokens":400,"ignore_eos":true,"temperature":0'
post /v1/completions "$LONG}" >/dev/null
want=$(json "$T/resp" 'd["choices"][0]["text"]')
curl -sN --max-time 30 "$URL/v1/completions" -d "$LONG,\"stream\":true}" >"$T/tcp.sse" &
CURL=$!
for _ in $(seq 2000); do [ "$(stat -c %s "$T/tcp.sse")" -gt 3000 ] && break; sleep 0.002; done
kill -9 "$WA"
wait "$CURL"
curl -s "$URL/health" >"$T/resp"
[ -n "$want" ] && [ "$(sse_text "$T/tcp.sse")" = "$want" ] && grep -q "recovered from" "$T/tcp.log" \
  && [ "$(json "$T/resp" 'd["cluster"]["recoveries"], d["cluster"]["nodes"]')" = "(1, 2)" ] \
  && pass "tcp: worker killed mid-stream, the stream finished with the same text (3 -> 2 nodes)" \
  || fail "tcp recovery: $(tail -c 300 "$T/tcp.sse") $(cat "$T/resp") $(tail -3 "$T/tcp.log")"
stop_server

[ "$fails" -eq 0 ] && exit 0 || exit 1
