#include "core/tokenizer.h"

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/gguf.h"
#include "core/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

// --- Helpers -------------------------------------------------------------

// Independent strict UTF-8 check (Unicode Table 3-7).
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = s[i];
    int n;
    uint32_t cp;
    if (c < 0x80) {
      n = 1, cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      n = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (int k = 1; k < n; ++k) {
      const uint8_t cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// UTF-8 encoding of code point `cp`.
std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A random string mixing ASCII, whitespace runs, 2/3/4-byte characters and
// characters outside the vocab. Never contains U+2581 (see RoundTrip).
std::string RandomText(std::mt19937* rng) {
  static const char* const kPicks[] = {"Once", " upon", " a", " time", "Lily", " the", "é",
                                       "ñ",    "ß",     "Ж",  "Ω",     "☃",    "€",    "中",
                                       "“",    "”",     "…",  "😀",     "🎉",    "𝄞",    "\n",
                                       "\t",   "\r",    " ",  "  ",    "<s>",  "</s>", "<0x41>"};
  std::uniform_int_distribution<int> len_dist(0, 24);
  std::uniform_int_distribution<int> kind_dist(0, 5);
  std::uniform_int_distribution<int> pick_dist(0, sizeof(kPicks) / sizeof(kPicks[0]) - 1);
  std::string s;
  for (int n = len_dist(*rng); n > 0; --n) {
    switch (kind_dist(*rng)) {
      case 0:  // printable ASCII
        s += static_cast<char>(std::uniform_int_distribution<int>(0x20, 0x7E)(*rng));
        break;
      case 1:  // 2-byte
        s += Utf8(std::uniform_int_distribution<uint32_t>(0x80, 0x7FF)(*rng));
        break;
      case 2: {  // 3-byte, no surrogates, no U+2581
        uint32_t cp = std::uniform_int_distribution<uint32_t>(0x800, 0xFFFD)(*rng);
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0x2581) cp = 0x4E2D;
        s += Utf8(cp);
        break;
      }
      case 3:  // 4-byte
        s += Utf8(std::uniform_int_distribution<uint32_t>(0x10000, 0x10FFFF)(*rng));
        break;
      default:
        s += kPicks[pick_dist(*rng)];
        break;
    }
  }
  return s;
}

// Feeds `ids` through a Detokenizer; checks each chunk is valid UTF-8 and
// returns the concatenation (Flush included).
std::string Stream(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  Detokenizer detok(&tok);
  std::string out;
  for (int32_t id : ids) {
    const std::string chunk = detok.Push(id);
    EXPECT_TRUE(IsValidUtf8(chunk)) << "chunk after id " << id;
    out += chunk;
  }
  const std::string tail = detok.Flush();
  EXPECT_TRUE(IsValidUtf8(tail));
  return out + tail;
}

// A tokenizer's GGUF metadata, built in memory.
struct VocabSpec {
  std::string model = "llama";
  std::vector<std::string> tokens;
  std::vector<float> scores;   // omitted when empty
  std::vector<int32_t> types;  // omitted when empty
  std::vector<std::pair<std::string, uint32_t>> ids;
};

absl::StatusOr<std::unique_ptr<Tokenizer>> Build(const VocabSpec& spec) {
  GgufWriter writer;
  if (!spec.model.empty()) writer.AddString("tokenizer.ggml.model", spec.model);
  writer.AddStringArray("tokenizer.ggml.tokens", spec.tokens);
  if (!spec.scores.empty()) writer.AddFloat32Array("tokenizer.ggml.scores", spec.scores);
  if (!spec.types.empty()) writer.AddInt32Array("tokenizer.ggml.token_type", spec.types);
  for (const auto& [key, value] : spec.ids) writer.AddUint32(key, value);
  absl::StatusOr<std::string> bytes = writer.Serialize();
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::unique_ptr<GgufFile>> file =
      GgufFile::FromBytes(*std::move(bytes), "synthetic.gguf");
  if (!file.ok()) return file.status();
  return Tokenizer::FromGguf(**file);
}

// <unk> <s> </s>, optionally the 256 byte tokens, then `pieces` (normal)
// with their scores.
VocabSpec SyntheticSpec(const std::vector<std::pair<std::string, float>>& pieces,
                        bool byte_tokens = true) {
  VocabSpec spec;
  spec.tokens = {"<unk>", "<s>", "</s>"};
  spec.scores = {0, 0, 0};
  spec.types = {2, 3, 3};
  if (byte_tokens) {
    static const char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      spec.tokens.push_back(
          absl::StrCat("<0x", std::string(1, kHex[b >> 4]), std::string(1, kHex[b & 15]), ">"));
      spec.scores.push_back(0);
      spec.types.push_back(6);
    }
  }
  for (const auto& [piece, score] : pieces) {
    spec.tokens.push_back(piece);
    spec.scores.push_back(score);
    spec.types.push_back(1);
  }
  return spec;
}

// The pieces of `ids` (for readable merge expectations).
std::vector<std::string> Pieces(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(tok.piece(id));
  return out;
}

std::unique_ptr<Tokenizer> MustBuild(const VocabSpec& spec) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Build(spec);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

// --- Real model: stories260K ---------------------------------------------

class Stories260KTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = testing::ModelPath("stories260K.gguf");
    if (path.empty()) GTEST_SKIP() << "stories260K.gguf not found under ../shared/models";
    absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::FromGguf(**file);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = *std::move(tok);
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Stories260KTest, Metadata) {
  EXPECT_EQ(tok_->vocab_size(), 512);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_EQ(tok_->piece(1), "<s>");
  EXPECT_EQ(tok_->type(0), TokenType::kUnknown);
  EXPECT_EQ(tok_->type(1), TokenType::kControl);
  EXPECT_EQ(tok_->type(3), TokenType::kByte);
  EXPECT_EQ(tok_->piece(13), "<0x0A>");
  EXPECT_EQ(tok_->piece(403), "\xE2\x96\x81Once");
  EXPECT_EQ(tok_->type(403), TokenType::kNormal);
}

// Expected ids were derived independently of this code: a naive O(n^2) SPM
// merge (rescan for the best-scoring leftmost pair) in a throwaway Python
// script reading the vocab straight from the GGUF file.
TEST_F(Stories260KTest, KnownIds) {
  EXPECT_THAT(tok_->Encode("Once upon a time", true), ElementsAre(1, 403, 407, 261, 378));
  EXPECT_THAT(tok_->Encode("Once upon a time", false), ElementsAre(403, 407, 261, 378));
  EXPECT_THAT(
      tok_->Encode("Once upon a time, there was a little girl named Lily.", true),
      ElementsAre(1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426));
  EXPECT_THAT(tok_->Encode("Hello world", true), ElementsAre(1, 346, 306, 414, 263, 304, 341));
  EXPECT_THAT(
      tok_->Encode("It was 3:45pm, and Tom (age 12) said: \"Wow!\"", true),
      ElementsAre(1, 359, 413, 286, 410, 472, 467, 484, 480, 427, 423, 432, 269, 274, 287, 410, 489,
                  412, 428, 411, 410, 475, 479, 488, 336, 467, 313, 448, 327, 443, 436));
  // 'é' is a piece (485); '☃' (E2 98 83) needs byte fallback.
  EXPECT_THAT(tok_->Encode("caf\xC3\xA9 \xE2\x98\x83", true),
              ElementsAre(1, 280, 412, 431, 485, 410, 229, 155, 134));
  // 'ï' and 'ë' are not pieces: byte fallback.
  EXPECT_THAT(tok_->Encode("na\xC3\xAFve Zo\xC3\xAB", true),
              ElementsAre(1, 297, 412, 198, 178, 360, 410, 469, 414, 198, 174));
  EXPECT_THAT(
      tok_->Encode("Lily's   big   dog \xF0\x9F\x98\x80", true),
      ElementsAre(1, 317, 439, 419, 410, 410, 370, 410, 410, 400, 428, 410, 243, 162, 155, 131));
  EXPECT_THAT(tok_->Encode("a\nb\tc", true), ElementsAre(1, 261, 13, 430, 12, 429));
  EXPECT_THAT(tok_->Encode(" x", true), ElementsAre(1, 410, 410, 444));
  EXPECT_THAT(tok_->Encode("", true), ElementsAre(1));
  EXPECT_THAT(tok_->Encode("", false), ElementsAre());
}

TEST_F(Stories260KTest, ControlSpellingsArePlainText) {
  EXPECT_THAT(tok_->Encode("<s>", true), ElementsAre(1, 410, 504, 419, 505));
  EXPECT_THAT(tok_->Encode("<s>hi</s>", false),
              ElementsAre(410, 504, 419, 505, 415, 417, 504, 492, 419, 505));
  const std::vector<int32_t> ids = tok_->Encode("<s></s><unk><0x41>", false);
  for (int32_t id : ids) {
    EXPECT_EQ(tok_->type(id), TokenType::kNormal) << "id " << id;
  }
  EXPECT_EQ(tok_->Decode(tok_->Encode("<s></s><unk><0x41>", true)), "<s></s><unk><0x41>");
}

TEST_F(Stories260KTest, TokenBytesAndDecode) {
  EXPECT_EQ(tok_->TokenBytes(-1, 403), " Once");
  EXPECT_EQ(tok_->TokenBytes(1, 403), "Once");  // leading space dropped after BOS
  EXPECT_EQ(tok_->TokenBytes(407, 403), " Once");
  EXPECT_EQ(tok_->TokenBytes(1, 410), "");        // "▁" alone after BOS
  EXPECT_EQ(tok_->TokenBytes(1, 13), "\n");       // byte tokens keep their byte
  EXPECT_EQ(tok_->TokenBytes(1, 3 + 0x20), " ");  // even a space byte after BOS
  EXPECT_EQ(tok_->TokenBytes(-1, 1), "");
  EXPECT_EQ(tok_->TokenBytes(-1, 2), "");
  EXPECT_EQ(tok_->TokenBytes(-1, 0), "");
  EXPECT_EQ(tok_->TokenBytes(-1, 243), "\xF0");  // partial UTF-8
  EXPECT_EQ(tok_->TokenBytes(-1, 9999), "");     // out of range
  EXPECT_EQ(tok_->Decode({1, 403, 407, 261, 378, 2}), "Once upon a time");
  EXPECT_EQ(tok_->Decode({403, 407}), " Once upon");
  // Each BOS drops the leading space of the piece after it.
  EXPECT_EQ(tok_->Decode({1, 403, 1, 407}), "Onceupon");
}

// Decode(Encode(s, true)) == s for every valid UTF-8 `s` without U+2581
// (which Encode cannot tell from an escaped space): the space Encode
// prepends is always inside the first piece ("▁" alone is piece 410), and
// that one space is what Decode drops after BOS. Without BOS the prepended
// space stays: Decode(Encode(s, false)) == " " + s for non-empty s.
TEST_F(Stories260KTest, RoundTripFixed) {
  const std::vector<std::string> texts = {"",
                                          " ",
                                          "  ",
                                          "x",
                                          " x",
                                          "  x",
                                          "x ",
                                          "x  ",
                                          " leading and trailing ",
                                          "double  space",
                                          "Once upon a time",
                                          "line1\nline2\r\n\ttab",
                                          "caf\xC3\xA9 \xE2\x98\x83",
                                          "\xF0\x9F\x98\x80\xF0\x9F\x8E\x89",
                                          "\xC2\xA0nbsp\xE2\x80\x8A",
                                          "<s>x</s>",
                                          "100% $5 & ~"};
  for (const std::string& s : texts) {
    EXPECT_EQ(tok_->Decode(tok_->Encode(s, true)), s) << "'" << s << "'";
    if (!s.empty()) {
      EXPECT_EQ(tok_->Decode(tok_->Encode(s, false)), " " + s);
    }
  }
  // The documented exception: a literal U+2581 comes back as a space.
  EXPECT_EQ(tok_->Decode(tok_->Encode("a\xE2\x96\x81"
                                      "b",
                                      true)),
            "a b");
  // Invalid UTF-8 round-trips too: each bad byte is its own byte token.
  const std::string bad = "a\xFF\xC3(\xE2\x82 \xED\xA0\x80z\xF0";
  EXPECT_EQ(tok_->Decode(tok_->Encode(bad, true)), bad);
}

TEST_F(Stories260KTest, RoundTripRandom) {
  std::mt19937 rng(20240611);
  for (int i = 0; i < 2000; ++i) {
    const std::string s = RandomText(&rng);
    ASSERT_TRUE(IsValidUtf8(s));
    const std::vector<int32_t> ids = tok_->Encode(s, true);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok_->vocab_size());
    for (size_t k = 1; k < ids.size(); ++k) {
      EXPECT_NE(tok_->type(ids[k]), TokenType::kControl) << "'" << s << "'";
    }
    EXPECT_EQ(tok_->Decode(ids), s) << "'" << s << "'";
    EXPECT_EQ(Stream(*tok_, ids), s) << "'" << s << "'";
  }
}

TEST_F(Stories260KTest, LongInput) {
  std::string text;
  for (int i = 0; i < 3000; ++i) {
    text += "Once upon a time, there was a little girl named Lily. \xE2\x98\x83\n";
  }
  const std::vector<int32_t> ids = tok_->Encode(text, true);
  EXPECT_EQ(tok_->Decode(ids), text);
  EXPECT_LT(ids.size(), text.size());
}

// --- Streaming -------------------------------------------------------------

TEST_F(Stories260KTest, StreamingMatchesDecode) {
  for (const std::string s : {"Once upon a time", " two  spaces ", "caf\xC3\xA9 \xE2\x98\x83!",
                              "Lily's   big   dog \xF0\x9F\x98\x80"}) {
    const std::vector<int32_t> ids = tok_->Encode(s, true);
    EXPECT_EQ(Stream(*tok_, ids), tok_->Decode(ids));
    EXPECT_EQ(Stream(*tok_, ids), s);
  }
}

TEST_F(Stories260KTest, StreamingHoldsSplitEmoji) {
  // "a😀" -> <s> ▁a <0xF0> <0x9F> <0x98> <0x80>
  const std::vector<int32_t> ids = tok_->Encode("a\xF0\x9F\x98\x80", true);
  ASSERT_THAT(ids, ElementsAre(1, 261, 243, 162, 155, 131));
  Detokenizer detok(tok_.get());
  EXPECT_EQ(detok.Push(1), "");
  EXPECT_EQ(detok.Push(261), "a");
  EXPECT_EQ(detok.Push(243), "");
  EXPECT_EQ(detok.Push(162), "");
  EXPECT_EQ(detok.Push(155), "");
  EXPECT_EQ(detok.Push(131), "\xF0\x9F\x98\x80");
  EXPECT_EQ(detok.Flush(), "");
}

TEST_F(Stories260KTest, StreamingReplacesInvalid) {
  const auto byte = [](int b) { return 3 + b; };  // <0xNN> ids on this vocab
  const std::string fffd = "\xEF\xBF\xBD";
  Detokenizer detok(tok_.get());
  EXPECT_EQ(detok.Push(byte(0xFF)), fffd);  // never valid
  EXPECT_EQ(detok.Push(byte(0x80)), fffd);  // stray continuation
  EXPECT_EQ(detok.Push(byte(0xC0)), fffd);  // overlong lead
  EXPECT_EQ(detok.Push(byte(0xE2)), "");    // may still complete
  EXPECT_EQ(detok.Push(412), fffd + "a");   // ... but 'a' breaks it
  EXPECT_EQ(detok.Push(byte(0xED)), "");
  EXPECT_EQ(detok.Push(byte(0xA0)), fffd + fffd);  // surrogate
  EXPECT_EQ(detok.Push(byte(0xF4)), "");
  EXPECT_EQ(detok.Push(byte(0x90)), fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(detok.Push(byte(0xE0)), "");
  EXPECT_EQ(detok.Push(byte(0x80)), fffd + fffd);  // overlong 3-byte
  EXPECT_EQ(detok.Push(byte(0xF0)), "");
  EXPECT_EQ(detok.Push(byte(0x9F)), "");
  EXPECT_EQ(detok.Flush(), fffd);  // incomplete tail
  EXPECT_EQ(detok.Flush(), "");
  EXPECT_EQ(detok.Push(byte(0xC3)), "");
  EXPECT_EQ(detok.Push(byte(0xA9)), "\xC3\xA9");  // recovers afterwards
}

TEST_F(Stories260KTest, StreamingRandomBytesStayValid) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> id_dist(0, 511);
  for (int round = 0; round < 200; ++round) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 30; ++i) ids.push_back(id_dist(rng));
    const std::string out = Stream(*tok_, ids);
    EXPECT_TRUE(IsValidUtf8(out));
    if (IsValidUtf8(tok_->Decode(ids))) {
      EXPECT_EQ(out, tok_->Decode(ids));
    }
  }
}

// --- Synthetic vocab: merge order, ties, fallback --------------------------

constexpr char kSp[] = "\xE2\x96\x81";  // "▁"

TEST(SyntheticTokenizerTest, HigherScoreMergesFirst) {
  auto tok = MustBuild(
      SyntheticSpec({{kSp, -10}, {"a", -10}, {"b", -10}, {"c", -10}, {"ab", -2}, {"bc", -1}}));
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Pieces(*tok, tok->Encode("abc", false)), ElementsAre(kSp, "a", "bc"));
  tok = MustBuild(
      SyntheticSpec({{kSp, -10}, {"a", -10}, {"b", -10}, {"c", -10}, {"ab", -1}, {"bc", -2}}));
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Pieces(*tok, tok->Encode("abc", false)), ElementsAre(kSp, "ab", "c"));
}

TEST(SyntheticTokenizerTest, TiesMergeLeftmostFirst) {
  auto tok = MustBuild(SyntheticSpec(
      {{kSp, -10}, {"a", -10}, {"b", -10}, {"c", -10}, {"ab", -1}, {"bc", -1}, {"aa", -1}}));
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Pieces(*tok, tok->Encode("abc", false)), ElementsAre(kSp, "ab", "c"));
  EXPECT_THAT(Pieces(*tok, tok->Encode("aaa", false)), ElementsAre(kSp, "aa", "a"));
  EXPECT_THAT(Pieces(*tok, tok->Encode("aaaaa", false)), ElementsAre(kSp, "aa", "aa", "a"));
}

TEST(SyntheticTokenizerTest, NoScoresMeansAllTiesLeftmost) {
  VocabSpec spec;
  spec.tokens = {"<unk>", "<s>", "</s>", kSp, "a", "b", "c", "ab", "bc", absl::StrCat(kSp, "a")};
  spec.types = {2, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  auto tok = MustBuild(spec);
  ASSERT_NE(tok, nullptr);
  // "▁abc": pairs ▁a, ab, bc all score 0 -> ▁a first, then bc.
  EXPECT_THAT(Pieces(*tok, tok->Encode("abc", false)), ElementsAre(absl::StrCat(kSp, "a"), "bc"));
}

TEST(SyntheticTokenizerTest, MergesChainThroughNewPairs) {
  auto tok = MustBuild(SyntheticSpec({{kSp, -10},
                                      {"a", -10},
                                      {"b", -10},
                                      {"c", -10},
                                      {"d", -10},
                                      {"ab", -1},
                                      {"cd", -2},
                                      {"abc", -3},
                                      {"abcd", -4},
                                      {"xyz", 5}}));
  ASSERT_NE(tok, nullptr);
  // ab (-1), cd (-2), then ab+cd = abcd; "abc" never gets its turn.
  EXPECT_THAT(Pieces(*tok, tok->Encode("abcd", false)), ElementsAre(kSp, "abcd"));
  // A piece is only reachable through pieces: no "xy"/"yz", so no "xyz".
  EXPECT_THAT(Pieces(*tok, tok->Encode("xyz", false)),
              ElementsAre(kSp, "<0x78>", "<0x79>", "<0x7A>"));
  // ab (-1), then abc (-3); "▁" is only a piece on its own.
  EXPECT_THAT(Pieces(*tok, tok->Encode("abc d", false)), ElementsAre(kSp, "abc", kSp, "d"));
}

TEST(SyntheticTokenizerTest, MatchesNaiveMergeOnRandomText) {
  // Naive O(n^2) reference: repeatedly merge the best-scoring (leftmost)
  // adjacent pair that is a piece.
  const std::vector<std::pair<std::string, float>> pieces = {{kSp, -1},
                                                             {"a", -1},
                                                             {"b", -1},
                                                             {"c", -1},
                                                             {"ab", -3},
                                                             {"ba", -3},
                                                             {"bc", -2},
                                                             {"aa", -3},
                                                             {"abc", -4},
                                                             {"aab", -2},
                                                             {"cab", -5},
                                                             {"bcb", -1},
                                                             {"abab", -3.5},
                                                             {absl::StrCat(kSp, "a"), -2},
                                                             {absl::StrCat(kSp, "ab"), -6}};
  auto tok = MustBuild(SyntheticSpec(pieces));
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> ch(0, 3);
  for (int round = 0; round < 500; ++round) {
    std::string text;
    const int len = 1 + round % 15;
    for (int i = 0; i < len; ++i) text += "abc "[ch(rng)];
    std::vector<std::string> sym = {kSp};
    for (char c : text) sym.push_back(c == ' ' ? kSp : std::string(1, c));
    while (true) {
      int best = -1;
      float best_score = 0;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        for (const auto& [piece, score] : pieces) {
          if (piece == sym[i] + sym[i + 1] && (best < 0 || score > best_score)) {
            best = static_cast<int>(i), best_score = score;
          }
        }
      }
      if (best < 0) break;
      sym[best] += sym[best + 1];
      sym.erase(sym.begin() + best + 1);
    }
    EXPECT_THAT(Pieces(*tok, tok->Encode(text, false)), ElementsAreArray(sym)) << text;
  }
}

TEST(SyntheticTokenizerTest, UnknownWithoutByteTokens) {
  auto tok = MustBuild(SyntheticSpec({{kSp, -1}, {"a", -1}}, /*byte_tokens=*/false));
  ASSERT_NE(tok, nullptr);
  // 'z' and 'é' (one symbol, two bytes) each become a single <unk>.
  EXPECT_THAT(tok->Encode("az\xC3\xA9", true), ElementsAre(1, 3, 4, 0, 0));
  EXPECT_EQ(tok->Decode(tok->Encode("az\xC3\xA9", true)), "a");
}

TEST(SyntheticTokenizerTest, ControlPiecesAreNeverMerged) {
  // "<s" is a normal piece, so a merge could reach "<s>" -- the control
  // token must still not be produced.
  auto tok = MustBuild(SyntheticSpec({{kSp, -1}, {"<", -1}, {"s", -1}, {">", -1}, {"<s", 0}}));
  ASSERT_NE(tok, nullptr);
  const std::vector<int32_t> ids = tok->Encode("<s>", false);
  EXPECT_THAT(ids, Not(Contains(1)));
  EXPECT_THAT(Pieces(*tok, ids), ElementsAre(kSp, "<s", ">"));
  EXPECT_EQ(tok->Decode(tok->Encode("<s>", true)), "<s>");
}

// --- Errors ------------------------------------------------------------------

TEST(TokenizerErrorTest, WrongModel) {
  VocabSpec spec = SyntheticSpec({});
  spec.model = "bert";  // "gpt2" is supported now (core/bpe_tokenizer_test.cc)
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Build(spec);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.model"));
  EXPECT_THAT(tok.status().message(), HasSubstr("bert"));
  spec.model = "";
  tok = Build(spec);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.model"));
}

TEST(TokenizerErrorTest, ArrayLengthMismatch) {
  VocabSpec spec = SyntheticSpec({{"a", -1}});
  spec.scores.pop_back();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Build(spec);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.scores"));

  spec = SyntheticSpec({{"a", -1}});
  spec.types.push_back(1);
  tok = Build(spec);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.token_type"));

  spec = SyntheticSpec({{"a", -1}});
  spec.types.back() = 42;
  tok = Build(spec);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.token_type"));
}

TEST(TokenizerErrorTest, SpecialIdOutOfRange) {
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.unknown_token_id"}) {
    VocabSpec spec = SyntheticSpec({{"a", -1}}, /*byte_tokens=*/false);
    spec.ids = {{key, 4}};  // vocab size 4
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Build(spec);
    ASSERT_FALSE(tok.ok()) << key;
    EXPECT_THAT(tok.status().message(), HasSubstr(key));
    spec.ids = {{key, 3}};
    EXPECT_TRUE(Build(spec).ok()) << key;
  }
}

TEST(TokenizerErrorTest, MalformedByteToken) {
  VocabSpec spec = SyntheticSpec({{"a", -1}}, /*byte_tokens=*/false);
  spec.tokens.push_back("<0xZZ>");
  spec.scores.push_back(0);
  spec.types.push_back(6);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Build(spec);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.tokens"));
}

TEST(TokenizerErrorTest, DefaultsWhenOptionalKeysAbsent) {
  VocabSpec spec;
  spec.tokens = {"<unk>", "<s>", "</s>", kSp, "h", "i"};
  auto tok = MustBuild(spec);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->type(1), TokenType::kNormal);  // no token_type: all normal
  EXPECT_THAT(tok->Encode("hi", true), ElementsAre(1, 3, 4, 5));
}

}  // namespace
}  // namespace shardlm
