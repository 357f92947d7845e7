#include "core/bpe.h"

#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <queue>

#include "absl/strings/str_cat.h"

namespace shardlm::bpe {

Utf8Scan ScanUtf8(absl::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return {Utf8Scan::kValid, 1};
  int need;                      // total sequence length
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
    if (lead == 0xE0) lo = 0xA0;  // overlong
    if (lead == 0xED) hi = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4;
    if (lead == 0xF0) lo = 0x90;  // overlong
    if (lead == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return {Utf8Scan::kInvalid, 1};  // continuation, C0/C1 or F5..FF
  }
  for (int i = 1; i < need; ++i) {
    if (static_cast<size_t>(i) >= s.size()) return {Utf8Scan::kIncomplete, 0};
    const uint8_t b = byte(i);
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return {Utf8Scan::kInvalid, i};
  }
  return {Utf8Scan::kValid, need};
}

namespace {

// Decodes the valid character of length `len` at the start of `s`.
UChar32 DecodeUtf8(absl::string_view s, int len) {
  const auto b = [&](int i) { return static_cast<uint32_t>(static_cast<uint8_t>(s[i])); };
  switch (len) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves,
// the other bytes for 256, 257, ... in byte order.
struct ByteAlphabet {
  std::array<std::string, 256> symbol;
  std::array<int, 512> byte_of;  // code point -> byte, or -1
  ByteAlphabet() {
    byte_of.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : next++;
      AppendUtf8(cp, &symbol[b]);
      byte_of[cp] = b;
    }
  }
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet* const alphabet = new ByteAlphabet();
  return *alphabet;
}

}  // namespace

const std::string& ByteSymbol(uint8_t b) { return Alphabet().symbol[b]; }

std::string ByteLevelEncode(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += ByteSymbol(static_cast<uint8_t>(c));
  return out;
}

std::string ByteLevelDecode(absl::string_view piece) {
  std::string out;
  for (size_t pos = 0; pos < piece.size();) {
    const Utf8Scan scan = ScanUtf8(piece.substr(pos));
    const int len = scan.kind == Utf8Scan::kValid ? scan.len : 1;
    const UChar32 cp = scan.kind == Utf8Scan::kValid ? DecodeUtf8(piece.substr(pos), len) : -1;
    if (cp >= 0 && cp < 512 && Alphabet().byte_of[cp] >= 0) {
      out += static_cast<char>(Alphabet().byte_of[cp]);
    } else {
      out.append(piece.data() + pos, len);
    }
    pos += len;
  }
  return out;
}

const char kLlama3Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char kQwen2Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

absl::StatusOr<std::string> PreTokenizerPattern(absl::string_view name) {
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") return kLlama3Pattern;
  if (name == "gpt2" || name == "default") return kGpt2Pattern;
  if (name == "qwen2") return kQwen2Pattern;
  return absl::NotFoundError(absl::StrCat("unknown pre-tokenizer \"", name,
                                          "\" (known: llama-bpe, gpt2, default, qwen2)"));
}

struct RegexSplitter::Impl {
  std::unique_ptr<icu::RegexPattern> pattern;
};

RegexSplitter::RegexSplitter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RegexSplitter::~RegexSplitter() = default;

absl::StatusOr<std::unique_ptr<RegexSplitter>> RegexSplitter::Create(const std::string& pattern) {
  UErrorCode status = U_ZERO_ERROR;
  UParseError parse_error;
  auto impl = std::make_unique<Impl>();
  impl->pattern.reset(
      icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(pattern), 0, parse_error, status));
  if (U_FAILURE(status)) {
    return absl::InvalidArgumentError(absl::StrCat("bad pre-tokenizer regex \"", pattern,
                                                   "\": ", u_errorName(status), " at offset ",
                                                   parse_error.offset));
  }
  return std::unique_ptr<RegexSplitter>(new RegexSplitter(std::move(impl)));
}

std::vector<std::pair<size_t, size_t>> RegexSplitter::Split(absl::string_view text) const {
  std::vector<std::pair<size_t, size_t>> pieces;
  if (text.empty()) return pieces;
  // UTF-16 copy of the text; offset[i] is the byte offset of UTF-16 unit i.
  icu::UnicodeString u16;
  std::vector<size_t> offset;
  offset.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Scan scan = ScanUtf8(text.substr(pos));
    int len = 1;
    UChar32 cp = 0xFFFD;  // an invalid byte: one "other" character
    if (scan.kind == Utf8Scan::kValid) {
      len = scan.len;
      cp = DecodeUtf8(text.substr(pos), len);
    }
    u16.append(cp);
    offset.push_back(pos);
    if (cp > 0xFFFF) offset.push_back(pos);
    pos += len;
  }
  offset.push_back(text.size());
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::RegexMatcher> matcher(impl_->pattern->matcher(u16, status));
  size_t last = 0;  // UTF-16 index
  while (U_SUCCESS(status) && matcher->find(status)) {
    const size_t begin = matcher->start(status);
    const size_t end = matcher->end(status);
    if (U_FAILURE(status)) break;
    if (begin > last) pieces.emplace_back(offset[last], offset[begin]);
    if (end > begin) pieces.emplace_back(offset[begin], offset[end]);
    last = std::max(last, end);
  }
  if (last < static_cast<size_t>(u16.length())) pieces.emplace_back(offset[last], text.size());
  return pieces;
}

std::string NormalizeNfc(absl::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Scan scan = ScanUtf8(text.substr(pos));
    if (scan.kind != Utf8Scan::kValid) return std::string(text);
    pos += scan.len;
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) return std::string(text);
  icu::UnicodeString out = nfc->normalize(
      icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), text.size())), status);
  if (U_FAILURE(status)) return std::string(text);
  std::string utf8;
  out.toUTF8String(utf8);
  return utf8;
}

namespace {
uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
}  // namespace

void MergeTable::Add(int32_t left, int32_t right, int32_t rank, int32_t result) {
  map_.try_emplace(PairKey(left, right), Entry{rank, result});  // first (best) rank wins
}

const MergeTable::Entry* MergeTable::Find(int32_t left, int32_t right) const {
  if (left < 0 || right < 0) return nullptr;
  auto it = map_.find(PairKey(left, right));
  return it == map_.end() ? nullptr : &it->second;
}

std::vector<int> MergeTable::Apply(std::vector<int32_t>* ids_ptr) const {
  std::vector<int32_t>& ids = *ids_ptr;
  const int n = static_cast<int>(ids.size());
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t result;
    bool operator>(const Candidate& o) const {
      return rank > o.rank || (rank == o.rank && pos > o.pos);
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto consider = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    if (const Entry* e = Find(ids[left], ids[next[left]])) queue.push({e->rank, left, e->result});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const int right = next[top.pos];
    const Entry* e = Find(ids[top.pos], ids[right]);
    if (e == nullptr || e->result != top.result) continue;  // stale
    ids[top.pos] = top.result;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    consider(prev[top.pos]);
    consider(top.pos);
  }
  std::vector<int> survivors;
  for (int i = 0; i < n; ++i) {
    if (alive[i]) survivors.push_back(i);
  }
  return survivors;
}

void SpecialSplitter::Add(const std::string& spelling, int32_t id) {
  if (spelling.empty()) return;
  auto& list = by_first_[static_cast<uint8_t>(spelling[0])];
  list.emplace_back(spelling, id);
  std::stable_sort(list.begin(), list.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  ++count_;
}

std::vector<SpecialSplitter::Piece> SpecialSplitter::Split(absl::string_view text) const {
  std::vector<Piece> pieces;
  size_t plain_begin = 0;
  for (size_t pos = 0; pos < text.size();) {
    const std::pair<std::string, int32_t>* found = nullptr;
    for (const auto& candidate : by_first_[static_cast<uint8_t>(text[pos])]) {
      if (text.substr(pos, candidate.first.size()) == candidate.first) {
        found = &candidate;
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    if (pos > plain_begin) pieces.push_back({text.substr(plain_begin, pos - plain_begin), -1});
    pieces.push_back({text.substr(pos, found->first.size()), found->second});
    pos += found->first.size();
    plain_begin = pos;
  }
  if (plain_begin < text.size()) pieces.push_back({text.substr(plain_begin), -1});
  return pieces;
}

}  // namespace shardlm::bpe
