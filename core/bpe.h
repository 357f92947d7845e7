// Building blocks of merge-rank BPE tokenizers (Hugging Face `tokenizers`
// semantics): UTF-8 scanning, GPT-2's byte <-> code point mapping, regex
// pre-tokenization (ICU), the merge table and special-token splitting.
#ifndef SHARDLM_CORE_BPE_H_
#define SHARDLM_CORE_BPE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shardlm::bpe {

// How a byte string starts, per Unicode Table 3-7 (well-formed UTF-8).
struct Utf8Scan {
  enum Kind { kValid, kIncomplete, kInvalid } kind;
  // kValid: the character's length; kInvalid: the length of the maximal
  // ill-formed subpart (>= 1) to replace by one U+FFFD; kIncomplete: unused.
  int len;
};

// Classifies the character at the start of non-empty `s`. kIncomplete means
// `s` ends inside a sequence that may still become valid.
Utf8Scan ScanUtf8(absl::string_view s);

// GPT-2's byte-level alphabet: the UTF-8 spelling of the printable code point
// that stands for byte `b` ("Ġ" for a space).
const std::string& ByteSymbol(uint8_t b);
// Maps the characters of a byte-level piece back to bytes; a character
// outside the alphabet is kept as its own UTF-8.
std::string ByteLevelDecode(absl::string_view piece);
// The byte-level spelling of raw `bytes` (each byte's ByteSymbol).
std::string ByteLevelEncode(absl::string_view bytes);

// Split patterns of Hugging Face tokenizer.json files.
extern const char kLlama3Pattern[];
extern const char kGpt2Pattern[];
extern const char kQwen2Pattern[];
// The pattern of a llama.cpp `tokenizer.ggml.pre` name ("llama-bpe", "gpt2",
// "default", "qwen2"), or NotFound naming `name`.
absl::StatusOr<std::string> PreTokenizerPattern(absl::string_view name);

// Splits text with a regex into pieces the way a Hugging Face Split
// pre-tokenizer with behaviour "Isolated" does: every match is a piece and so
// is every stretch between matches, so the pieces cover the text. Bytes that
// are not valid UTF-8 are matched as U+FFFD (punctuation-like "other") one
// byte at a time, so any byte string splits and round-trips. Thread-safe.
class RegexSplitter {
 public:
  static absl::StatusOr<std::unique_ptr<RegexSplitter>> Create(const std::string& pattern);
  ~RegexSplitter();
  // Byte ranges [begin, end) of the pieces of `text`, in order.
  std::vector<std::pair<size_t, size_t>> Split(absl::string_view text) const;

 private:
  struct Impl;
  explicit RegexSplitter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Applies Unicode NFC to `text` when it is valid UTF-8 (else returns it as is).
std::string NormalizeNfc(absl::string_view text);

// Merges keyed by the ids of the two parts.
class MergeTable {
 public:
  void Add(int32_t left, int32_t right, int32_t rank, int32_t result);
  size_t size() const { return map_.size(); }
  // Merges adjacent ids of `ids` in place, lowest rank first and leftmost on
  // ties, re-examining new neighbours after each merge (Hugging Face's
  // Word::merge_all). Negative ids never merge. Returns the indexes of the
  // surviving symbols; (*ids)[i] is then the merged id of symbol i.
  std::vector<int> Apply(std::vector<int32_t>* ids) const;

 private:
  struct Entry {
    int32_t rank;
    int32_t result;
  };
  const Entry* Find(int32_t left, int32_t right) const;
  absl::flat_hash_map<uint64_t, Entry> map_;
};

// Finds special-token spellings in text: at the leftmost position where one
// occurs, the longest one there.
class SpecialSplitter {
 public:
  void Add(const std::string& spelling, int32_t id);
  bool empty() const { return count_ == 0; }
  // One piece of text: plain text (id < 0) or a special token.
  struct Piece {
    absl::string_view text;
    int32_t id;
  };
  std::vector<Piece> Split(absl::string_view text) const;

 private:
  // First byte -> (spelling, id), longest first.
  std::vector<std::pair<std::string, int32_t>> by_first_[256];
  size_t count_ = 0;
};

}  // namespace shardlm::bpe

#endif  // SHARDLM_CORE_BPE_H_
