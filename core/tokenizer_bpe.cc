// The merge-rank modes of Tokenizer (see tokenizer.h): loading
// tokenizer.ggml.merges and the byte-level tables, and encoding.
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "core/bpe.h"
#include "core/status_macros.h"
#include "core/tokenizer.h"

namespace shardlm {
namespace {

constexpr char kTokensKey[] = "tokenizer.ggml.tokens";
constexpr char kMergesKey[] = "tokenizer.ggml.merges";
constexpr char kPreKey[] = "tokenizer.ggml.pre";
constexpr char kPreRegexKey[] = "tokenizer.shardlm.pre_regex";
constexpr char kIgnoreMergesKey[] = "tokenizer.shardlm.ignore_merges";
constexpr char kNormalizerKey[] = "tokenizer.shardlm.normalizer";
constexpr char kSpaceMarker[] = "\xE2\x96\x81";  // U+2581 "▁"

}  // namespace

absl::Status Tokenizer::LoadMerges(const GgufFile& file) {
  ASSIGN_OR_RETURN(const GgufValue* merges, file.GetArray(kMergesKey, GgufType::kString));
  absl::flat_hash_map<absl::string_view, int32_t> any_piece;  // every token type
  any_piece.reserve(pieces_.size());
  for (int32_t id = 0; id < vocab_size(); ++id) any_piece[pieces_[id]] = id;
  const auto lookup = [&](absl::string_view piece, size_t rank) -> absl::StatusOr<int32_t> {
    auto it = any_piece.find(piece);
    if (it != any_piece.end()) return it->second;
    return absl::InvalidArgumentError(absl::StrCat(file.source(), ": ", kMergesKey, "[", rank,
                                                   "] = \"", merges->arr[rank].s, "\": \"", piece,
                                                   "\" is not in ", kTokensKey));
  };
  for (size_t rank = 0; rank < merges->arr.size(); ++rank) {
    const std::string& merge = merges->arr[rank].s;
    const size_t space = merge.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == merge.size() ||
        merge.find(' ', space + 1) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(file.source(), ": ", kMergesKey, "[", rank,
                                                     "] = \"", merge,
                                                     "\" is not two tokens separated by a space"));
    }
    const absl::string_view left = absl::string_view(merge).substr(0, space);
    const absl::string_view right = absl::string_view(merge).substr(space + 1);
    ASSIGN_OR_RETURN(int32_t left_id, lookup(left, rank));
    ASSIGN_OR_RETURN(int32_t right_id, lookup(right, rank));
    ASSIGN_OR_RETURN(int32_t result_id, lookup(absl::StrCat(left, right), rank));
    merges_.Add(left_id, right_id, static_cast<int32_t>(rank), result_id);
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::LoadByteLevel(const GgufFile& file) {
  std::string pre = "default";
  if (file.Find(kPreKey) != nullptr) {
    ASSIGN_OR_RETURN(pre, file.GetString(kPreKey));
  }
  std::string pattern;
  if (file.Find(kPreRegexKey) != nullptr) {
    ASSIGN_OR_RETURN(pattern, file.GetString(kPreRegexKey));
  } else {
    absl::StatusOr<std::string> known = bpe::PreTokenizerPattern(pre);
    if (!known.ok()) {
      return absl::UnimplementedError(
          absl::StrCat(file.source(), ": ", kPreKey, ": ", known.status().message()));
    }
    pattern = *known;
  }
  absl::StatusOr<std::unique_ptr<bpe::RegexSplitter>> splitter =
      bpe::RegexSplitter::Create(pattern);
  if (!splitter.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.source(), ": ", splitter.status().message()));
  }
  splitter_ = *std::move(splitter);
  // Llama 3's tokenizer.json sets ignore_merges; llama.cpp ties it to llama-bpe.
  ignore_merges_ = pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
  if (const GgufValue* v = file.Find(kIgnoreMergesKey)) {
    if (v->type != GgufType::kBool) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.source(), ": ", kIgnoreMergesKey, " is not a bool"));
    }
    ignore_merges_ = v->b;
  }
  if (file.Find(kNormalizerKey) != nullptr) {
    ASSIGN_OR_RETURN(std::string normalizer, file.GetString(kNormalizerKey));
    if (normalizer != "NFC" && !normalizer.empty()) {
      return absl::UnimplementedError(absl::StrCat(file.source(), ": ", kNormalizerKey, " is \"",
                                                   normalizer, "\"; only \"NFC\" is supported"));
    }
    nfc_ = normalizer == "NFC";
  }
  for (int b = 0; b < 256; ++b) {
    auto it = piece_to_id_.find(bpe::ByteSymbol(static_cast<uint8_t>(b)));
    if (it == piece_to_id_.end()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: %s has no normal token \"%s\" for byte 0x%02X (byte-level vocabularies need all "
          "256)",
          file.source(), kTokensKey, bpe::ByteSymbol(static_cast<uint8_t>(b)), b));
    }
    byte_symbol_id_[b] = it->second;
  }
  token_text_.resize(pieces_.size());
  for (int32_t id = 0; id < vocab_size(); ++id) {
    if (types_[id] == TokenType::kNormal) {
      token_text_[id] = bpe::ByteLevelDecode(pieces_[id]);
    } else if (types_[id] == TokenType::kUserDefined) {
      token_text_[id] = pieces_[id];
    }
  }
  return absl::OkStatus();
}

void Tokenizer::EncodeByteLevel(absl::string_view raw, std::vector<int32_t>* ids) const {
  std::string normalized;
  if (nfc_) normalized = bpe::NormalizeNfc(raw);
  const absl::string_view text = nfc_ ? absl::string_view(normalized) : raw;
  std::vector<int32_t> symbols;
  for (const auto& [begin, end] : splitter_->Split(text)) {
    const absl::string_view piece = text.substr(begin, end - begin);
    if (ignore_merges_) {
      auto it = piece_to_id_.find(bpe::ByteLevelEncode(piece));
      if (it != piece_to_id_.end()) {
        ids->push_back(it->second);
        continue;
      }
    }
    symbols.clear();
    for (char c : piece) symbols.push_back(byte_symbol_id_[static_cast<uint8_t>(c)]);
    for (int i : merges_.Apply(&symbols)) ids->push_back(symbols[i]);
  }
}

void Tokenizer::EncodeSpmMerges(absl::string_view text, std::vector<int32_t>* ids) const {
  const std::string normalized =
      absl::StrCat(kSpaceMarker, absl::StrReplaceAll(text, {{" ", kSpaceMarker}}));
  const absl::string_view norm(normalized);
  // One symbol per character (an invalid byte is its own); -1 when the
  // character is not a token: byte fallback or unk after merging.
  std::vector<int32_t> symbols;
  std::vector<absl::string_view> chars;
  for (size_t pos = 0; pos < norm.size();) {
    const bpe::Utf8Scan scan = bpe::ScanUtf8(norm.substr(pos));
    const size_t len = scan.kind == bpe::Utf8Scan::kValid ? scan.len : 1;
    chars.push_back(norm.substr(pos, len));
    auto it = piece_to_id_.find(chars.back());
    symbols.push_back(it == piece_to_id_.end() ? -1 : it->second);
    pos += len;
  }
  bool last_unk = false;  // consecutive unknown characters fuse into one unk
  for (int i : merges_.Apply(&symbols)) {
    if (symbols[i] >= 0) {
      ids->push_back(symbols[i]);
      last_unk = false;
      continue;
    }
    bool all_bytes = true;
    for (char c : chars[i]) all_bytes = all_bytes && byte_to_id_[static_cast<uint8_t>(c)] >= 0;
    if (all_bytes) {
      for (char c : chars[i]) ids->push_back(byte_to_id_[static_cast<uint8_t>(c)]);
      last_unk = false;
    } else if (!last_unk) {
      ids->push_back(unk_id_);
      last_unk = true;
    }
  }
}

}  // namespace shardlm
