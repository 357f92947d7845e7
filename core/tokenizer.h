// BPE tokenizers read from GGUF metadata, in three modes:
//  - tokenizer.ggml.model = "llama" without merges: SentencePiece-style,
//    merges by piece score (llama.cpp's SPM tokenizer);
//  - "llama" with tokenizer.ggml.merges: the same text handling ("▁" for
//    spaces, one prepended, byte fallback through <0xNN>, unknown characters
//    fused into one unk) but merging by merge rank as Hugging Face's BPE does;
//  - "gpt2": byte-level BPE (GPT-2 byte alphabet, regex pre-tokenization
//    chosen by tokenizer.ggml.pre, merges by rank, Llama 3's ignore_merges).
// Plus a streaming detokenizer that only emits complete UTF-8.
#ifndef SHARDLM_CORE_TOKENIZER_H_
#define SHARDLM_CORE_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/bpe.h"
#include "core/gguf.h"

namespace shardlm {

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

class Tokenizer {
 public:
  // Builds the tokenizer from `file`'s tokenizer.ggml.* metadata. Errors
  // (missing or inconsistent arrays, unsupported model) name the key.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file);

  // Token ids for `text`. Prepends BOS when `add_bos`. Unless
  // `parse_special`, text is plain text: control-token spellings like "<s>"
  // are not special. With `parse_special`, control (and user-defined) token
  // spellings inside the text become their ids, leftmost-longest, as Hugging
  // Face does; the text between them is encoded piece by piece. In the merge
  // modes user-defined tokens are always matched (Hugging Face and llama.cpp
  // do the same).
  std::vector<int32_t> Encode(absl::string_view text, bool add_bos,
                              bool parse_special = false) const;

  // The bytes `id` stands for when it follows `prev` ("▁" becomes a space, a
  // byte token its byte, control tokens nothing; the leading space of the
  // first piece after BOS is dropped; byte-level pieces map back to their
  // raw bytes). May be a partial UTF-8 sequence.
  std::string TokenBytes(int32_t prev, int32_t id) const;
  // Whole-sequence decode (BOS/EOS and other control tokens are skipped).
  std::string Decode(const std::vector<int32_t>& ids) const;

  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  TokenType type(int32_t id) const { return types_[id]; }
  // tokenizer.ggml.add_bos_token (true when absent).
  bool add_bos_token() const { return add_bos_token_; }
  // "llama" (score merges), "llama+merges" or "gpt2".
  const char* mode_name() const;

 private:
  enum class Mode { kSpmScores, kSpmMerges, kByteLevel };
  Tokenizer() = default;
  // FromGguf steps: pieces/scores/types, special ids, lookup tables.
  absl::Status LoadVocab(const GgufFile& file);
  absl::Status LoadSpecialIds(const GgufFile& file);
  absl::Status BuildIndexes(const GgufFile& file);
  // Merge-rank modes: tokenizer.ggml.merges, specials, byte-level tables.
  absl::Status LoadMerges(const GgufFile& file);
  absl::Status LoadByteLevel(const GgufFile& file);
  // Encodes text with no special tokens in it, appending to `ids`.
  void EncodePlain(absl::string_view text, std::vector<int32_t>* ids) const;
  void EncodeSpmScores(absl::string_view text, std::vector<int32_t>* ids) const;
  void EncodeSpmMerges(absl::string_view text, std::vector<int32_t>* ids) const;
  void EncodeByteLevel(absl::string_view text, std::vector<int32_t>* ids) const;
  // Appends the ids of one final symbol: its piece, else byte fallback,
  // else unk.
  void AppendSymbol(absl::string_view symbol, std::vector<int32_t>* ids) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  int32_t bos_id_ = 1;
  int32_t eos_id_ = 2;
  int32_t unk_id_ = 0;
  // Pieces Encode may produce (normal and user-defined tokens) -> id.
  absl::flat_hash_map<std::string, int32_t> piece_to_id_;
  // Byte value -> id of its <0xNN> token, or -1.
  std::array<int32_t, 256> byte_to_id_;
  // Id -> byte value, for byte tokens (0 for the others).
  std::vector<uint8_t> token_byte_;

  Mode mode_ = Mode::kSpmScores;
  bool add_bos_token_ = true;
  // Merge modes: merges by rank; spellings matched with parse_special
  // (control and user-defined) and always (user-defined; merge modes only).
  bpe::MergeTable merges_;
  bpe::SpecialSplitter specials_;
  bpe::SpecialSplitter user_defined_;
  // Byte-level mode: pre-tokenizer, id of each byte's symbol, whether a
  // pre-token that is itself a token skips merging, NFC normalization, and
  // the raw bytes of each token.
  std::unique_ptr<bpe::RegexSplitter> splitter_;
  std::array<int32_t, 256> byte_symbol_id_;
  bool ignore_merges_ = false;
  bool nfc_ = false;
  std::vector<std::string> token_text_;
};

// Streams detokenized text: feed ids one by one, get back only complete
// UTF-8 characters; bytes of an unfinished character wait for the next token.
// Invalid sequences are replaced by U+FFFD so output is always valid UTF-8.
class Detokenizer {
 public:
  explicit Detokenizer(const Tokenizer* tokenizer, int32_t prev = -1)
      : tokenizer_(tokenizer), prev_(prev) {}
  // Text that became complete with `id`.
  std::string Push(int32_t id);
  // Whatever is left (an incomplete tail becomes U+FFFD).
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  int32_t prev_;
  std::string pending_;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_TOKENIZER_H_
