#include "core/tokenizer.h"

#include <limits>
#include <queue>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

constexpr char kModelKey[] = "tokenizer.ggml.model";
constexpr char kTokensKey[] = "tokenizer.ggml.tokens";
constexpr char kScoresKey[] = "tokenizer.ggml.scores";
constexpr char kTypesKey[] = "tokenizer.ggml.token_type";
constexpr char kBosKey[] = "tokenizer.ggml.bos_token_id";
constexpr char kEosKey[] = "tokenizer.ggml.eos_token_id";
constexpr char kUnkKey[] = "tokenizer.ggml.unknown_token_id";
constexpr char kMergesKey[] = "tokenizer.ggml.merges";
constexpr char kAddBosKey[] = "tokenizer.ggml.add_bos_token";

constexpr char kSpaceMarker[] = "\xE2\x96\x81";  // U+2581 "▁"
constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

using bpe::ScanUtf8;
using bpe::Utf8Scan;

// One symbol of the merge: a byte range of the normalized text in a doubly
// linked list; a merged-away symbol has len 0.
struct Symbol {
  int prev;
  int next;
  size_t start;
  size_t len;
};

// A candidate merge of adjacent symbols `left` and `right`.
struct Bigram {
  int left;
  int right;
  float score;
  size_t len;  // stale once the symbols' lengths no longer add up to this
};

// Orders the queue: highest score first, then leftmost.
struct BigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

using PieceMap = absl::flat_hash_map<std::string, int32_t>;
using BigramQueue = std::priority_queue<Bigram, std::vector<Bigram>, BigramLess>;

// Splits `text` into UTF-8 characters; an invalid byte is its own symbol.
std::vector<Symbol> SplitChars(absl::string_view text) {
  std::vector<Symbol> symbols;
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Scan scan = ScanUtf8(text.substr(pos));
    const size_t len = scan.kind == Utf8Scan::kValid ? scan.len : 1;
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, index + 1, pos, len});
    pos += len;
  }
  if (!symbols.empty()) symbols.back().next = -1;
  return symbols;
}

// Queues the merge of `left` and `right` when their text is a piece.
void TryAddBigram(absl::string_view text, const std::vector<Symbol>& symbols,
                  const PieceMap& pieces, const std::vector<float>& scores, int left, int right,
                  BigramQueue* queue) {
  if (left < 0 || right < 0) return;
  const size_t len = symbols[left].len + symbols[right].len;
  auto it = pieces.find(text.substr(symbols[left].start, len));
  if (it == pieces.end()) return;
  queue->push({left, right, scores[it->second], len});
}

// Merges adjacent symbols, best-scoring piece first (leftmost on ties), until
// no adjacent pair forms a piece. O(n log n) like llama.cpp's SPM tokenizer.
void MergeSymbols(absl::string_view text, const PieceMap& pieces, const std::vector<float>& scores,
                  std::vector<Symbol>* symbols) {
  std::vector<Symbol>& sym = *symbols;
  BigramQueue queue;
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) {
    TryAddBigram(text, sym, pieces, scores, i - 1, i, &queue);
  }
  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = sym[bigram.left];
    Symbol& right = sym[bigram.right];
    if (left.len == 0 || right.len == 0 || left.len + right.len != bigram.len) continue;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = bigram.left;
    TryAddBigram(text, sym, pieces, scores, left.prev, bigram.left, &queue);
    TryAddBigram(text, sym, pieces, scores, bigram.left, left.next, &queue);
  }
}

// Value of one hex digit, or -1.
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The byte a "<0xNN>" piece stands for, or -1 when malformed.
int ParseBytePiece(absl::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  const int hi = HexDigit(piece[3]);
  const int lo = HexDigit(piece[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// Reads the special-token id under `key` (or `fallback` when absent) and
// checks it against the vocabulary size.
absl::StatusOr<int32_t> ReadTokenId(const GgufFile& file, const char* key, int32_t fallback,
                                    int32_t vocab_size) {
  const bool present = file.Find(key) != nullptr;
  uint64_t id = static_cast<uint64_t>(fallback);
  if (present) {
    ASSIGN_OR_RETURN(id, file.GetUint(key));
  }
  if (id >= static_cast<uint64_t>(vocab_size)) {
    return absl::InvalidArgumentError(absl::StrCat(file.source(), ": ", key, " = ", id,
                                                   present ? "" : " (default)",
                                                   " is out of range for vocab size ", vocab_size));
  }
  return static_cast<int32_t>(id);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& file) {
  ASSIGN_OR_RETURN(std::string model, file.GetString(kModelKey));
  auto tokenizer = absl::WrapUnique(new Tokenizer());
  if (model == "llama") {
    tokenizer->mode_ =
        file.Find(kMergesKey) != nullptr ? Mode::kSpmMerges : Mode::kSpmScores;
  } else if (model == "gpt2") {
    tokenizer->mode_ = Mode::kByteLevel;
  } else {
    return absl::UnimplementedError(
        absl::StrCat(file.source(), ": ", kModelKey, " is \"", model,
                     "\"; supported: \"llama\" (SentencePiece-style) and \"gpt2\" (byte-level BPE)"));
  }
  RETURN_IF_ERROR(tokenizer->LoadVocab(file));
  RETURN_IF_ERROR(tokenizer->LoadSpecialIds(file));
  RETURN_IF_ERROR(tokenizer->BuildIndexes(file));
  if (tokenizer->mode_ != Mode::kSpmScores) RETURN_IF_ERROR(tokenizer->LoadMerges(file));
  if (tokenizer->mode_ == Mode::kByteLevel) RETURN_IF_ERROR(tokenizer->LoadByteLevel(file));
  return tokenizer;
}

const char* Tokenizer::mode_name() const {
  switch (mode_) {
    case Mode::kSpmScores: return "llama";
    case Mode::kSpmMerges: return "llama+merges";
    case Mode::kByteLevel: return "gpt2";
  }
  return "";
}

absl::Status Tokenizer::LoadVocab(const GgufFile& file) {
  ASSIGN_OR_RETURN(const GgufValue* tokens, file.GetArray(kTokensKey, GgufType::kString));
  const size_t n = tokens->arr.size();
  if (n == 0 || n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.source(), ": ", kTokensKey, " has unusable length ", n));
  }
  pieces_.reserve(n);
  for (const GgufValue& v : tokens->arr) pieces_.push_back(v.s);
  const auto check_length = [&](const char* key, size_t got) -> absl::Status {
    if (got == n) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(file.source(), ": ", key, " has ", got,
                                                   " entries but ", kTokensKey, " has ", n));
  };
  scores_.assign(n, 0.0f);
  if (file.Find(kScoresKey) != nullptr) {
    ASSIGN_OR_RETURN(const GgufValue* scores, file.GetArray(kScoresKey, GgufType::kFloat32));
    RETURN_IF_ERROR(check_length(kScoresKey, scores->arr.size()));
    for (size_t i = 0; i < n; ++i) scores_[i] = static_cast<float>(scores->arr[i].f);
  }
  types_.assign(n, TokenType::kNormal);
  if (file.Find(kTypesKey) != nullptr) {
    ASSIGN_OR_RETURN(const GgufValue* types, file.GetArray(kTypesKey, GgufType::kInt32));
    RETURN_IF_ERROR(check_length(kTypesKey, types->arr.size()));
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = types->arr[i].i;
      if (t < 0 || t > static_cast<int64_t>(TokenType::kByte)) {
        return absl::InvalidArgumentError(absl::StrCat(file.source(), ": ", kTypesKey, "[", i,
                                                       "] = ", t, " is not a token type"));
      }
      types_[i] = static_cast<TokenType>(t);
    }
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::LoadSpecialIds(const GgufFile& file) {
  ASSIGN_OR_RETURN(bos_id_, ReadTokenId(file, kBosKey, 1, vocab_size()));
  ASSIGN_OR_RETURN(eos_id_, ReadTokenId(file, kEosKey, 2, vocab_size()));
  ASSIGN_OR_RETURN(unk_id_, ReadTokenId(file, kUnkKey, 0, vocab_size()));
  if (const GgufValue* v = file.Find(kAddBosKey)) {
    if (v->type != GgufType::kBool) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.source(), ": ", kAddBosKey, " is not a bool"));
    }
    add_bos_token_ = v->b;
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::BuildIndexes(const GgufFile& file) {
  byte_to_id_.fill(-1);
  token_byte_.assign(pieces_.size(), 0);
  piece_to_id_.reserve(pieces_.size());
  for (int32_t id = 0; id < vocab_size(); ++id) {
    switch (types_[id]) {
      case TokenType::kUserDefined:
        if (mode_ != Mode::kSpmScores) {
          specials_.Add(pieces_[id], id);
          user_defined_.Add(pieces_[id], id);
        }
        [[fallthrough]];
      case TokenType::kNormal:
        piece_to_id_[pieces_[id]] = id;  // a duplicate piece: the last id wins
        break;
      case TokenType::kControl:
        specials_.Add(pieces_[id], id);
        break;
      case TokenType::kByte: {
        const int value = ParseBytePiece(pieces_[id]);
        if (value < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(file.source(), ": ", kTokensKey, "[", id, "] = \"", pieces_[id],
                           "\" is a byte token (", kTypesKey, " 6) but not <0xNN>"));
        }
        byte_to_id_[value] = id;
        token_byte_[id] = static_cast<uint8_t>(value);
        break;
      }
      default:  // control, unknown, unused, undefined: never produced by Encode
        break;
    }
  }
  return absl::OkStatus();
}

void Tokenizer::AppendSymbol(absl::string_view symbol, std::vector<int32_t>* ids) const {
  auto it = piece_to_id_.find(symbol);
  if (it != piece_to_id_.end()) {
    ids->push_back(it->second);
    return;
  }
  for (char c : symbol) {
    if (byte_to_id_[static_cast<uint8_t>(c)] < 0) {
      ids->push_back(unk_id_);  // no byte fallback for the whole symbol
      return;
    }
  }
  for (char c : symbol) ids->push_back(byte_to_id_[static_cast<uint8_t>(c)]);
}

std::vector<int32_t> Tokenizer::Encode(absl::string_view text, bool add_bos,
                                       bool parse_special) const {
  std::vector<int32_t> ids;
  if (add_bos) ids.push_back(bos_id_);
  const bpe::SpecialSplitter* specials =
      parse_special ? &specials_ : (mode_ == Mode::kSpmScores ? nullptr : &user_defined_);
  if (specials == nullptr || specials->empty()) {
    EncodePlain(text, &ids);
    return ids;
  }
  for (const bpe::SpecialSplitter::Piece& piece : specials->Split(text)) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
    } else {
      EncodePlain(piece.text, &ids);
    }
  }
  return ids;
}

void Tokenizer::EncodePlain(absl::string_view text, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  switch (mode_) {
    case Mode::kSpmScores: return EncodeSpmScores(text, ids);
    case Mode::kSpmMerges: return EncodeSpmMerges(text, ids);
    case Mode::kByteLevel: return EncodeByteLevel(text, ids);
  }
}

void Tokenizer::EncodeSpmScores(absl::string_view text, std::vector<int32_t>* ids) const {
  const std::string normalized =
      absl::StrCat(kSpaceMarker, absl::StrReplaceAll(text, {{" ", kSpaceMarker}}));
  std::vector<Symbol> symbols = SplitChars(normalized);
  MergeSymbols(normalized, piece_to_id_, scores_, &symbols);
  for (int i = 0; i >= 0; i = symbols[i].next) {
    AppendSymbol(absl::string_view(normalized).substr(symbols[i].start, symbols[i].len), ids);
  }
}

std::string Tokenizer::TokenBytes(int32_t prev, int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  if (mode_ == Mode::kByteLevel) {
    const TokenType t = types_[id];
    return t == TokenType::kNormal || t == TokenType::kUserDefined ? token_text_[id] : "";
  }
  switch (types_[id]) {
    case TokenType::kByte:
      return std::string(1, static_cast<char>(token_byte_[id]));
    case TokenType::kNormal:
    case TokenType::kUserDefined: {
      std::string text = absl::StrReplaceAll(pieces_[id], {{kSpaceMarker, " "}});
      if (prev == bos_id_ && !text.empty() && text[0] == ' ') text.erase(0, 1);
      return text;
    }
    default:  // control, unknown, unused, undefined
      return "";
  }
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string text;
  int32_t prev = -1;
  for (int32_t id : ids) {
    text += TokenBytes(prev, id);
    prev = id;
  }
  return text;
}

std::string Detokenizer::Push(int32_t id) {
  pending_ += tokenizer_->TokenBytes(prev_, id);
  prev_ = id;
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    const Utf8Scan scan = ScanUtf8(absl::string_view(pending_).substr(pos));
    if (scan.kind == Utf8Scan::kIncomplete) break;  // wait for more bytes
    if (scan.kind == Utf8Scan::kValid) {
      out.append(pending_, pos, scan.len);
    } else {
      out += kReplacement;
    }
    pos += scan.len;
  }
  pending_.erase(0, pos);
  return out;
}

std::string Detokenizer::Flush() {
  // Push leaves at most one incomplete sequence behind.
  std::string out = pending_.empty() ? "" : kReplacement;
  pending_.clear();
  return out;
}

}  // namespace shardlm
