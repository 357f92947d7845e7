#!/usr/bin/env python3
"""Independent reference for core/bpe_tokenizer_test.cc (not run in CI).

Re-implements, without shardlm code, the two Hugging Face BPE flavours the
test checks, and prints the expected ids as C++ initializers:
  * byte-level BPE (GPT-2 byte alphabet, Llama 3 / GPT-2 split regex via the
    `regex` module, merges applied one at a time, lowest rank then leftmost,
    as tiktoken and HF do; Llama 3's ignore_merges; special tokens split out
    first) on the mini vocabulary of mini_byte_level_merges.txt, built as the
    test builds it;
  * SentencePiece-style BPE of a tokenizer.json (TinyStories-656K: Prepend
    "▁", Replace " " -> "▁", merges by rank, byte fallback, fused unk).

Usage:
  bpe_reference.py make-merges LLAMA3_TOKENIZER_JSON > mini_byte_level_merges.txt
  bpe_reference.py mini MERGES_FILE
  bpe_reference.py spm TOKENIZER_JSON
  bpe_reference.py real LLAMA3_TOKENIZER_JSON   (JSON: "0"/"1" + text -> ids)
"""
import json
import sys

import regex

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def bpe(symbols, ranks):
    """Merges the lowest-ranked adjacent pair (leftmost on ties), one at a time."""
    word = list(symbols)
    while len(word) > 1:
        best = None
        for i in range(len(word) - 1):
            r = ranks.get((word[i], word[i + 1]))
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        word[i:i + 2] = [word[i] + word[i + 1]]
    return word


def split_specials(text, specials):
    """[(text, id or None)]: leftmost, then longest special spelling."""
    out, plain, pos = [], 0, 0
    while pos < len(text):
        hit = None
        for s, i in sorted(specials.items(), key=lambda kv: -len(kv[0])):
            if text.startswith(s, pos):
                hit = (s, i)
                break
        if hit is None:
            pos += 1
            continue
        if pos > plain:
            out.append((text[plain:pos], None))
        out.append(hit)
        pos += len(hit[0])
        plain = pos
    if plain < len(text):
        out.append((text[plain:], None))
    return out


def byte_level_encode(text, vocab, ranks, pattern, ignore_merges, specials, always):
    ids = []
    for piece, sid in split_specials(text, specials if specials else always):
        if sid is not None:
            ids.append(sid)
            continue
        for m in regex.finditer(pattern, piece):
            mapped = "".join(B2U[b] for b in m.group(0).encode("utf-8"))
            if ignore_merges and mapped in vocab:
                ids.append(vocab[mapped])
                continue
            ids.extend(vocab[t] for t in bpe(mapped, ranks))
    return ids


# The tricky corpus (the tables of bpe_test_cases.inc follow its order).
CORPUS = [
    "Hello, my dog is cute",
    "don't", "I'LL", "they've", "She's here. We'RE there'd",
    "12345", "3.14159", "1,000,000 and 2024",
    "中文字符测试", "日本語のテキスト",
    "emoji 😀🎉 ok", "👍🏽",
    "a   b", "\n\n", "trailing   ", "\ttab\t\tx", " leading", "line1\r\nline2", "  \n  x",
    "naïve café ÀÉÎ", "say hello",
    "a\x0b b", "a\x85 b", "a\xa0 b", "a\u3000\u3000b", "a\ufeff b", "x\u2028y", "\u2160\u2161 2",
    "x<|eot_id|>y", "<|begin_of_text|>hi",
    "use <|tool|> now", "",
]
SPECIALS_ON = ["<|begin_of_text|>hi", "x<|eot_id|>y", "a<|end_of_text|><|eot_id|>b"]


def cxx(ids):
    return "{" + ", ".join(str(i) for i in ids) + "}"


def cstr(s):
    esc = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = ""
    for c in s:
        if c in esc:
            out += esc[c]
        elif ord(c) < 0x20 or 0x7F <= ord(c) <= 0xA0 or c in "\u2028\u3000\ufeff":
            out += "".join("\\x%02X" % b for b in c.encode("utf-8")) + '" "'
        else:
            out += c
    return '"' + out + '"'


def mini(merges_file):
    merges = [l.rstrip("\n").split(" ") for l in open(merges_file, encoding="utf-8") if l.strip()]
    vocab = {B2U[b]: b for b in range(256)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab.setdefault("Ġhello", len(vocab))
    control = {"<|begin_of_text|>": len(vocab), "<|end_of_text|>": len(vocab) + 1,
               "<|eot_id|>": len(vocab) + 2}
    user = {"<|tool|>": len(vocab) + 3}
    ranks = {(a, b): r for r, (a, b) in enumerate(merges)}
    print("// vocab size", len(vocab) + 4)
    for name, pattern, ignore in (("llama-bpe", LLAMA3, True), ("gpt2", GPT2, False)):
        print("// pre =", name, ", parse_special = false")
        for t in CORPUS:
            print("    {%s, %s}," % (cstr(t), cxx(byte_level_encode(t, vocab, ranks, pattern, ignore, None, user))))
        print("// pre =", name, ", parse_special = true")
        for t in SPECIALS_ON:
            print("    {%s, %s}," % (cstr(t), cxx(byte_level_encode(t, vocab, ranks, pattern, ignore, {**control, **user}, user))))


def make_merges(path):
    """The first 600 Llama 3 merges whose parts the subset can make, plus a
    few for digits, CJK, emoji and contractions."""
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
              for m in json.load(open(path, encoding="utf-8"))["model"]["merges"][:600]]
    merges += [("1", "2"), ("12", "3"), ("4", "5"), ("ä", "¸"), ("ä¸", "Ń"), ("æ", "ĸ"),
               ("ð", "Ł"), ("ðŁ", "ĺ"), ("ðŁĺ", "Ģ"), ("'", "t"), ("'", "ll"), ("Ġ", "ðŁĺĢ")]
    while True:
        have = {B2U[b] for b in range(256)} | {a + b for a, b in merges}
        kept = [m for m in merges if m[0] in have and m[1] in have]
        seen, uniq = set(), []
        for m in kept:
            if m not in seen:
                seen.add(m)
                uniq.append(m)
        if uniq == merges:
            break
        merges = uniq
    for a, b in merges:
        print(a, b)


def spm(path):
    j = json.load(open(path, encoding="utf-8"))
    model = j["model"]
    vocab = model["vocab"]
    for t in j.get("added_tokens", []):
        vocab[t["content"]] = t["id"]
    ranks = {}
    for r, m in enumerate(model["merges"]):
        a, b = m.split(" ") if isinstance(m, str) else m
        ranks.setdefault((a, b), r)
    unk = vocab.get(model.get("unk_token"))
    corpus = ["Once upon a time, there was a little girl named Lily.", "Hello world",
              "  double  spaces ", "tom's 123 cake!", "é中x", "Lily and Tom"]
    for text in corpus:
        norm = "▁" + text.replace(" ", "▁")
        ids, last_unk = [], False
        for sym in bpe(list(norm), ranks):
            if sym in vocab:
                ids.append(vocab[sym])
                last_unk = False
                continue
            fb = ["<0x%02X>" % b for b in sym.encode("utf-8")]
            if model.get("byte_fallback") and all(f in vocab for f in fb):
                ids.extend(vocab[f] for f in fb)
                last_unk = False
            elif not (last_unk and model.get("fuse_unk")):
                ids.append(unk)
                last_unk = True
        print("    {%s, %s}," % (cstr(text), cxx(ids)))


def real(path):
    """Byte-level tokenizer.json (Llama 3): ids of CORPUS, specials off then on."""
    j = json.load(open(path, encoding="utf-8"))
    model = j["model"]
    vocab = model["vocab"]
    ranks = {}
    for r, m in enumerate(model["merges"]):
        a, b = m.split(" ") if isinstance(m, str) else m
        ranks.setdefault((a, b), r)
    pattern = [p for p in j["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split"][0]
    pattern = pattern["pattern"]["Regex"]
    added = {t["content"]: t["id"] for t in j["added_tokens"]}
    out = {}
    for parse in (False, True):
        for t in CORPUS + SPECIALS_ON:
            out["%d%s" % (parse, t)] = byte_level_encode(
                t, vocab, ranks, pattern, model.get("ignore_merges", False),
                added if parse else None, {})
    print(json.dumps(out))


if __name__ == "__main__":
    {"make-merges": make_merges, "mini": mini, "spm": spm, "real": real}[sys.argv[1]](sys.argv[2])
