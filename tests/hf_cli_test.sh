#!/usr/bin/env bash
# Hugging Face model folders as users run them: `generate --model FOLDER`
# prints the reference story of TinyStories-656K and stops at
# <|end_story|>; `convert` writes a GGUF that gives the same text and the
# same bytes as the in-memory conversion (so a TCP worker holding the GGUF
# serves a root holding the folder without streaming weights); 2..4 nodes
# give the same text; quantized conversions still tell the story; broken
# folders are one-line errors.
set -uo pipefail

source "$TEST_SRCDIR/$TEST_WORKSPACE/tests/shell_test_lib.sh"
trap kill_workers EXIT

HF=""
for c in "$TEST_SRCDIR/models/TinyStories-656K" "$TEST_SRCDIR/$TEST_WORKSPACE/external/models/TinyStories-656K"; do
  [ -f "$c/config.json" ] && HF="$c" && break
done

# --- errors that need no real model ---
mkdir -p "$T/empty"
expect_error "folder without config.json" "not a Hugging Face model folder" -- "$BIN" generate --model "$T/empty"
expect_error "convert a file" "not a Hugging Face model folder" -- "$BIN" convert "$T/nothing" "$T/x.gguf"
expect_error "convert argument count" "expected HF_DIR and OUT" -- "$BIN" convert "$T/empty"

if [ -z "$HF" ]; then
  echo "SKIP: ../shared/models/TinyStories-656K is absent; model tests skipped"
  [ "$fails" -eq 0 ] && exit 0 || exit 1
fi

REF="Once upon a time, there was a little girl named Lily. She had a toy car that she loved very much."

# --- the folder itself: reference text, stops at <|end_story|> ---
"$BIN" generate --model "$HF" --temperature 0 --steps 500 --stats >"$T/hf" 2>"$T/hf.err"; rc=$?
decoded=$(grep -o 'decode: [0-9]* tokens' "$T/hf.err" | grep -o '[0-9]*')
if [ "$rc" -eq 0 ] && [ "$(head -c ${#REF} "$T/hf")" = "$REF" ]; then
  pass "folder: reference text"
else
  fail "folder (rc=$rc): $(head -c 300 "$T/hf") $(head -c 300 "$T/hf.err")"
fi
# The model spells the marker out in text pieces ("<|", "end", "_story",
# "|>") and then samples the EOS token (<|end_story|>, id 2), which ends
# generation and prints nothing.
if [ -n "$decoded" ] && [ "$decoded" -lt 500 ] && ! grep -q "end of the context" "$T/hf.err" \
    && [ "$(tail -c 14 "$T/hf")" = "<|end_story|>" ]; then
  pass "folder: stops at <|end_story|> after $decoded tokens"
else
  fail "folder: did not stop at <|end_story|> (decoded=$decoded): $(tail -c 200 "$T/hf")"
fi

# --- convert: same text, same bytes as the in-memory image ---
"$BIN" convert "$HF" "$T/ts.gguf" 2>"$T/conv.err"; rc=$?
"$BIN" generate --model "$T/ts.gguf" --temperature 0 --steps 500 >"$T/gguf" 2>"$T/gguf.err"
if [ "$rc" -eq 0 ] && [ ! -e "$T/ts.gguf.partial" ] && cmp -s "$T/hf" "$T/gguf"; then
  pass "converted GGUF: same text"
else
  fail "converted GGUF (rc=$rc): $(head -c 300 "$T/conv.err") $(head -c 300 "$T/gguf.err")"
fi
"$BIN" inspect "$HF" >"$T/inspect.hf" 2>&1 && "$BIN" inspect "$T/ts.gguf" >"$T/inspect.gguf" 2>&1
if diff <(grep -v "$HF" "$T/inspect.hf") <(grep -v "$T/ts.gguf" "$T/inspect.gguf") >/dev/null; then
  pass "inspect: folder and converted GGUF describe the same model"
else
  fail "inspect differs: $(diff "$T/inspect.hf" "$T/inspect.gguf" | head -5)"
fi

# --- 2..4 nodes, uneven shares: same bits ---
for n in 2 3 4; do
  "$BIN" generate --model "$HF" --temperature 0 --steps 500 --nodes "$n" >"$T/n$n" 2>"$T/n$n.err"; rc=$?
  if [ "$rc" -eq 0 ] && cmp -s "$T/hf" "$T/n$n"; then pass "$n nodes: same text"; else
    fail "$n nodes (rc=$rc): $(head -c 300 "$T/n$n.err")"; fi
done
"$BIN" generate --model "$HF" --temperature 0 --steps 500 --nodes 3 --shares 2,1,1 >"$T/sh" 2>/dev/null
cmp -s "$T/hf" "$T/sh" && pass "shares 2,1,1: same text" || fail "shares 2,1,1 differ"

# --- a TCP worker holding the converted GGUF serves a root holding the folder ---
printf 'secret for the hf test\n' >"$T/secret"
start_worker w1 --secret-file "$T/secret" --model "$T/ts.gguf"; P1=$PORT
timeout 60 "$BIN" generate --model "$HF" --temperature 0 --steps 500 --transport tcp \
  --workers "127.0.0.1:$P1" --secret-file "$T/secret" >"$T/tcp" 2>"$T/tcp.err"; rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$T/hf" "$T/tcp" && grep -q "(from --model)" "$T/w1.log"; then
  pass "tcp: folder root + GGUF worker, weights not streamed"
else
  fail "tcp (rc=$rc): $(head -c 300 "$T/tcp.err") | $(tail -c 300 "$T/w1.log")"
fi

# --- quantized conversions still tell a story ---
for type in q8_0 q4_0; do
  "$BIN" convert "$HF" "$T/ts-$type.gguf" --type "$type" 2>"$T/conv-$type.err"; rc=$?
  "$BIN" generate --model "$T/ts-$type.gguf" --temperature 0 --steps 60 >"$T/$type" 2>/dev/null
  if [ "$rc" -eq 0 ] && grep -q "^Once upon a time" "$T/$type"; then
    pass "convert --type $type: $(head -c 80 "$T/$type")"
  else
    fail "convert --type $type (rc=$rc): $(head -c 300 "$T/conv-$type.err") $(head -c 200 "$T/$type")"
  fi
done
expect_error "convert --type f64" "--type" -- "$BIN" convert "$HF" "$T/bad.gguf" --type f64

# --- broken copies of the folder ---
broken() {  # broken NAME: a fresh copy of the folder in $T/NAME
  rm -rf "$T/$1"; mkdir -p "$T/$1"; cp "$HF"/* "$T/$1/"; chmod -R u+w "$T/$1"
}
broken trunc; head -c 100000 "$HF/model.safetensors" >"$T/trunc/model.safetensors"
expect_error "truncated safetensors" "model.safetensors" -- "$BIN" generate --model "$T/trunc"
broken badjson; printf '{"model_type": "llama", "hidden_size": ' >"$T/badjson/config.json"
expect_error "malformed config.json" "config.json: not valid JSON" -- "$BIN" generate --model "$T/badjson"
broken arch; sed -i 's/"llama"/"gpt2"/' "$T/arch/config.json"
expect_error "unsupported architecture" "model_type 'gpt2'" -- "$BIN" generate --model "$T/arch"
broken notok; rm "$T/notok/tokenizer.json"
expect_error "missing tokenizer.json" "tokenizer.json" -- "$BIN" generate --model "$T/notok"
broken noweights; rm "$T/noweights/model.safetensors"
expect_error "missing weights" "no model.safetensors" -- "$BIN" convert "$T/noweights" "$T/nw.gguf"
[ ! -e "$T/nw.gguf" ] && [ ! -e "$T/nw.gguf.partial" ] && pass "failed convert leaves no file" \
  || fail "failed convert left a file"

[ "$fails" -eq 0 ] && exit 0 || exit 1
