// Merge-rank BPE tokenizers: byte-level (mini Llama-3-style vocabulary built
// here, and the real Llama 3 tokenizer), SentencePiece-style with merges
// (TinyStories-656K), Hugging Face folder -> GGUF metadata, malformed input.
// Expected ids come from independent implementations (bpe_test_cases.inc).
#include <cstdint>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/bpe.h"
#include "core/gguf.h"
#include "core/gguf_writer.h"
#include "core/hf_tokenizer.h"
#include "core/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

#include "core/bpe_test_cases.inc"

using Metadata = std::vector<std::pair<std::string, GgufValue>>;

// Writes `meta` as a GGUF image, reads it back and loads the tokenizer.
absl::StatusOr<std::unique_ptr<Tokenizer>> FromMetadata(const Metadata& meta) {
  GgufWriter writer;
  for (const auto& [key, value] : meta) writer.AddValue(key, value);
  absl::StatusOr<std::string> bytes = writer.Serialize();
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::unique_ptr<GgufFile>> file =
      GgufFile::FromBytes(*std::move(bytes), "tokenizer.gguf");
  if (!file.ok()) return file.status();
  return Tokenizer::FromGguf(**file);
}

GgufValue Str(const std::string& s) {
  GgufValue v;
  v.type = GgufType::kString;
  v.s = s;
  return v;
}

GgufValue Arr(GgufType elem, std::vector<GgufValue> items) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = elem;
  v.arr = std::move(items);
  return v;
}

// The mini Llama-3-style vocabulary, built as bpe_reference.py builds it:
// ids 0..255 the byte symbols in byte order, then each merge's result, then
// "Ġhello" (no merge makes it), then 3 control tokens and 1 user-defined.
Metadata MiniMetadata(const std::string& pre) {
  std::ifstream in("core/testdata/mini_byte_level_merges.txt");
  EXPECT_TRUE(in.good()) << "core/testdata/mini_byte_level_merges.txt";
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(bpe::ByteSymbol(static_cast<uint8_t>(b)));
  std::vector<std::string> merges;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    merges.push_back(line);
    std::string joined = line;
    joined.erase(joined.find(' '), 1);
    if (std::find(tokens.begin(), tokens.end(), joined) == tokens.end()) tokens.push_back(joined);
  }
  tokens.push_back("Ġhello");
  std::vector<GgufValue> types(tokens.size() + 4);
  for (auto& t : types) t.type = GgufType::kInt32, t.i = 1;
  for (const char* special : {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|tool|>"}) {
    tokens.push_back(special);
  }
  types[types.size() - 4].i = types[types.size() - 3].i = types[types.size() - 2].i = 3;
  types.back().i = 4;
  std::vector<GgufValue> token_values, merge_values;
  for (const auto& t : tokens) token_values.push_back(Str(t));
  for (const auto& m : merges) merge_values.push_back(Str(m));
  GgufValue bos;
  bos.type = GgufType::kUint32;
  bos.u = tokens.size() - 4;
  GgufValue eos = bos;
  eos.u = tokens.size() - 3;
  return {{"tokenizer.ggml.model", Str("gpt2")},
          {"tokenizer.ggml.pre", Str(pre)},
          {"tokenizer.ggml.tokens", Arr(GgufType::kString, token_values)},
          {"tokenizer.ggml.token_type", Arr(GgufType::kInt32, types)},
          {"tokenizer.ggml.merges", Arr(GgufType::kString, merge_values)},
          {"tokenizer.ggml.bos_token_id", bos},
          {"tokenizer.ggml.eos_token_id", eos}};
}

std::unique_ptr<Tokenizer> MustLoad(const Metadata& meta) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = FromMetadata(meta);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

void ExpectCases(const Tokenizer& tok, const Case* begin, const Case* end, bool parse_special,
                 bool round_trip) {
  for (const Case* c = begin; c != end; ++c) {
    EXPECT_THAT(tok.Encode(c->text, false, parse_special), ElementsAreArray(c->ids))
        << "text \"" << c->text << "\" parse_special " << parse_special;
    if (round_trip) {
      EXPECT_EQ(tok.Decode(c->ids), c->text);
    }
  }
}

#define ALL(a) std::begin(a), std::end(a)

// Random byte strings, often invalid UTF-8, with some text mixed in.
std::string RandomBytes(std::mt19937* rng) {
  static const char* const kPicks[] = {" the", "'s", "123", "中", "😀", "  ", "\n", "é"};
  std::string s;
  for (int n = std::uniform_int_distribution<int>(0, 40)(*rng); n > 0; --n) {
    if (std::uniform_int_distribution<int>(0, 3)(*rng) == 0) {
      s += kPicks[std::uniform_int_distribution<int>(0, 7)(*rng)];
    } else {
      s += static_cast<char>(std::uniform_int_distribution<int>(0, 255)(*rng));
    }
  }
  return s;
}

void ExpectRandomRoundTrip(const Tokenizer& tok, int count) {
  std::mt19937 rng(20240611);
  for (int i = 0; i < count; ++i) {
    const std::string s = RandomBytes(&rng);
    const std::vector<int32_t> ids = tok.Encode(s, false);
    ASSERT_EQ(tok.Decode(ids), s) << "case " << i;
    // Streaming never emits more than the text's valid characters.
    Detokenizer detok(&tok);
    std::string streamed;
    for (int32_t id : ids) streamed += detok.Push(id);
    streamed += detok.Flush();
    EXPECT_FALSE(streamed.empty() && !s.empty()) << "case " << i;
  }
}

// --- Mini byte-level vocabulary ---------------------------------------------

TEST(MiniByteLevelTest, Llama3PatternKnownIds) {
  auto tok = MustLoad(MiniMetadata("llama-bpe"));
  ASSERT_NE(tok, nullptr);
  EXPECT_STREQ(tok->mode_name(), "gpt2");
  ExpectCases(*tok, ALL(kMiniLlama3Plain), false, true);
  ExpectCases(*tok, ALL(kMiniLlama3Special), true, false);
}

TEST(MiniByteLevelTest, Gpt2PatternKnownIds) {
  auto tok = MustLoad(MiniMetadata("gpt2"));
  ASSERT_NE(tok, nullptr);
  ExpectCases(*tok, ALL(kMiniGpt2Plain), false, true);
  ExpectCases(*tok, ALL(kMiniGpt2Special), true, false);
}

TEST(MiniByteLevelTest, IgnoreMergesOverride) {
  Metadata meta = MiniMetadata("llama-bpe");
  GgufValue off;
  off.type = GgufType::kBool;
  off.b = false;
  meta.emplace_back("tokenizer.shardlm.ignore_merges", off);
  auto tok = MustLoad(meta);
  ASSERT_NE(tok, nullptr);
  // "Ġhello" is a token no merge makes: only ignore_merges emits it whole.
  EXPECT_EQ(tok->Encode(" hello", false).size(), 3u);
  EXPECT_EQ(MustLoad(MiniMetadata("llama-bpe"))->Encode(" hello", false).size(), 1u);
}

TEST(MiniByteLevelTest, SpecialTokensDecodeAndStream) {
  auto tok = MustLoad(MiniMetadata("llama-bpe"));
  ASSERT_NE(tok, nullptr);
  const std::vector<int32_t> ids = tok->Encode("<|begin_of_text|>hi 😀", true, true);
  EXPECT_EQ(ids[0], tok->bos_id());
  EXPECT_EQ(ids[1], tok->bos_id());           // the spelling, parsed
  EXPECT_EQ(tok->Decode(ids), "hi 😀");        // control tokens print nothing
  EXPECT_EQ(tok->Decode(tok->Encode("use <|tool|>", false)), "use <|tool|>");
  std::string streamed;
  Detokenizer detok(tok.get());
  for (int32_t id : tok->Encode("中文 😀🎉 ok", false)) streamed += detok.Push(id);
  EXPECT_EQ(streamed + detok.Flush(), "中文 😀🎉 ok");
}

TEST(MiniByteLevelTest, RandomBytesRoundTrip) {
  for (const char* pre : {"llama-bpe", "gpt2", "qwen2"}) {
    SCOPED_TRACE(pre);
    auto tok = MustLoad(MiniMetadata(pre));
    ASSERT_NE(tok, nullptr);
    ExpectRandomRoundTrip(*tok, 2000);
  }
}

TEST(MiniByteLevelTest, LoaderErrors) {
  Metadata meta = MiniMetadata("mystery-pre");
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = FromMetadata(meta);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("mystery-pre"));
  meta = MiniMetadata("gpt2");
  meta[4].second.arr[3].s = "Ġ nonexistent";
  tok = FromMetadata(meta);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.merges[3]"));
  EXPECT_THAT(tok.status().message(), HasSubstr("nonexistent"));
  meta[4].second.arr[3].s = "nospace";
  tok = FromMetadata(meta);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("not two tokens"));
  meta = MiniMetadata("gpt2");
  meta[2].second.arr[32].s = "space";  // "Ġ" gone: merges using it fail
  tok = FromMetadata(meta);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("\"Ġ\" is not in tokenizer.ggml.tokens"));
  meta = MiniMetadata("gpt2");
  meta[4].second.arr.clear();  // no merges: now the byte symbol itself is missing
  meta[2].second.arr[32].s = "space";
  tok = FromMetadata(meta);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("0x20"));
}

// --- Real Llama 3 tokenizer ---------------------------------------------------

class Llama3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = testing::ModelPath("llama3-tokenizer/tokenizer.json");
    if (dir.empty()) GTEST_SKIP() << "llama3-tokenizer/ not found under ../shared/models";
    absl::StatusOr<Metadata> meta =
        TokenizerMetadataFromHfDir(dir.substr(0, dir.rfind('/')));
    ASSERT_TRUE(meta.ok()) << meta.status();
    meta_ = *std::move(meta);
    tok_ = MustLoad(meta_);
    ASSERT_NE(tok_, nullptr);
  }
  Metadata meta_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Llama3Test, Metadata) {
  EXPECT_EQ(tok_->vocab_size(), 128256);
  EXPECT_EQ(tok_->bos_id(), 128000);
  EXPECT_EQ(tok_->eos_id(), 128001);
  EXPECT_FALSE(tok_->add_bos_token());  // this tokenizer.json's post-processor adds none
  bool chat_template = false;
  for (const auto& [key, value] : meta_) {
    if (key == "tokenizer.chat_template") {
      chat_template = true;
      EXPECT_NE(value.s.find("<|start_header_id|>"), std::string::npos);  // from tokenizer_config.json
    }
    if (key == "tokenizer.ggml.pre") {
      EXPECT_EQ(value.s, "llama-bpe");
    }
    if (key == "tokenizer.ggml.model") {
      EXPECT_EQ(value.s, "gpt2");
    }
    EXPECT_NE(key, "tokenizer.shardlm.pre_regex");
  }
  EXPECT_TRUE(chat_template);
  EXPECT_EQ(tok_->type(128000), TokenType::kControl);
}

TEST_F(Llama3Test, KnownIds) {
  EXPECT_THAT(tok_->Encode("Hello, my dog is cute", false),
              ElementsAreArray({9906, 11, 856, 5679, 374, 19369}));
  ExpectCases(*tok_, ALL(kLlama3Plain), false, true);
  ExpectCases(*tok_, ALL(kLlama3Special), true, false);
}

TEST_F(Llama3Test, RandomBytesRoundTrip) { ExpectRandomRoundTrip(*tok_, 500); }

TEST_F(Llama3Test, GgufFileRoundTrip) {
  GgufWriter writer;
  for (const auto& [key, value] : meta_) writer.AddValue(key, value);
  const std::string path = testing::TempPath("llama3_tokenizer.gguf");
  ASSERT_TRUE(writer.Write(path).ok());
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.status();
  for (const Case& c : kLlama3Special) {
    EXPECT_EQ((*tok)->Encode(c.text, false, true), tok_->Encode(c.text, false, true));
  }
}

// --- TinyStories-656K (SentencePiece-style with merges) ------------------------

class TinyStoriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string json = testing::ModelPath("TinyStories-656K/tokenizer.json");
    if (json.empty()) GTEST_SKIP() << "TinyStories-656K/ not found under ../shared/models";
    absl::StatusOr<Metadata> meta = TokenizerMetadataFromHfDir(json.substr(0, json.rfind('/')));
    ASSERT_TRUE(meta.ok()) << meta.status();
    meta_ = *std::move(meta);
    tok_ = MustLoad(meta_);
    ASSERT_NE(tok_, nullptr);
  }
  Metadata meta_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(TinyStoriesTest, Metadata) {
  EXPECT_STREQ(tok_->mode_name(), "llama+merges");
  EXPECT_EQ(tok_->vocab_size(), 2048);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_EQ(tok_->piece(1), "<|start_story|>");
  EXPECT_EQ(tok_->type(0), TokenType::kUnknown);
  EXPECT_EQ(tok_->type(2), TokenType::kControl);
  EXPECT_TRUE(tok_->add_bos_token());
  for (const auto& [key, value] : meta_) {
    if (key == "tokenizer.ggml.scores") {
      // The first merge "e ▁" makes "e▁": score -0.
      int32_t id = -1;
      for (int32_t i = 0; i < tok_->vocab_size(); ++i) {
        if (tok_->piece(i) == "e\xE2\x96\x81") id = i;
      }
      ASSERT_GE(id, 0);
      EXPECT_EQ(value.arr[id].f, 0.0);
    }
  }
}

TEST_F(TinyStoriesTest, KnownIdsAndDecode) {
  ExpectCases(*tok_, ALL(kTinyStories), false, false);
  for (const Case& c : kTinyStories) {
    if (c.text.find("é") != std::string::npos) continue;  // unk does not round-trip
    std::vector<int32_t> with_bos = {tok_->bos_id()};
    with_bos.insert(with_bos.end(), c.ids.begin(), c.ids.end());
    EXPECT_EQ(tok_->Decode(with_bos), c.text);  // the prepended "▁" is stripped
    EXPECT_EQ(tok_->Encode(c.text, true), with_bos);
  }
  // The special spellings: plain text unless parse_special. Text between
  // specials is encoded piece by piece, each with its "▁" prepended (as
  // llama.cpp does; Hugging Face matches these normalized=true specials
  // after normalization instead: not checked here).
  EXPECT_THAT(tok_->Encode("<|end_story|>", false, true), ElementsAreArray({2}));
  EXPECT_THAT(tok_->Encode("<|end_story|>", false), ::testing::Not(::testing::Contains(2)));
}

// --- tokenizer.json errors -------------------------------------------------------

std::string MiniJson(const std::string& model, const std::string& extra = "") {
  return absl::StrCat(R"({"normalizer": null, "pre_tokenizer": {"type": "ByteLevel",
      "add_prefix_space": false, "use_regex": true}, "added_tokens": [], )",
                      extra, R"("model": )", model, "}");
}

absl::Status Convert(const std::string& json) {
  return TokenizerMetadataFromHfJson(json, "", "/models/x").status();
}

TEST(HfTokenizerErrorTest, Malformed) {
  absl::Status s = Convert("{not json");
  EXPECT_THAT(s.message(), HasSubstr("/models/x/tokenizer.json"));
  s = Convert(R"({"normalizer": null})");
  EXPECT_THAT(s.message(), HasSubstr("missing \"model\""));
  s = Convert(MiniJson(R"({"type": "Unigram", "vocab": []})"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("\"Unigram\""));
  s = Convert(MiniJson(R"({"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": []})"));
  EXPECT_THAT(s.message(), HasSubstr("no token with id 1"));
  s = Convert(MiniJson(R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["ab"]})"));
  EXPECT_THAT(s.message(), HasSubstr("model.merges[0] = \"ab\""));
  s = Convert(MiniJson(R"({"type": "BPE", "vocab": {"a": -4}, "merges": []})"));
  EXPECT_THAT(s.message(), HasSubstr("model.vocab[\"a\"]"));
  s = Convert(MiniJson(R"({"type": "BPE", "vocab": {"a": 0}})"));
  EXPECT_THAT(s.message(), HasSubstr("model.merges"));
  s = TokenizerMetadataFromHfJson(
      MiniJson(R"({"type": "BPE", "vocab": {"a": 0}, "merges": []})"),
      R"({"bos_token": "<s>"})", "/models/x").status();
  EXPECT_THAT(s.message(), HasSubstr("tokenizer_config.json: bos_token \"<s>\""));
  s = Convert(R"({"pre_tokenizer": {"type": "Whitespace"}, "model": {"type": "BPE",
      "vocab": {"a": 0}, "merges": []}})");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("Whitespace"));
  s = Convert(MiniJson(R"({"type": "BPE", "vocab": {"a": "zero"}, "merges": []})"));
  EXPECT_THAT(s.message(), HasSubstr("model.vocab[\"a\"]"));
  EXPECT_FALSE(TokenizerMetadataFromHfDir("/nonexistent/dir").ok());
}

TEST(HfTokenizerTest, UnknownRegexIsKept) {
  // A Split regex no pre name covers: stored as tokenizer.shardlm.pre_regex.
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    const std::string sym = bpe::ByteSymbol(static_cast<uint8_t>(b));
    std::string escaped;
    for (char c : sym) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    absl::StrAppend(&vocab, b ? ", " : "", "\"", escaped, "\": ", b);
  }
  const std::string json = absl::StrCat(
      R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split",
      "pattern": {"Regex": "\\p{N}|[^\\p{N}]+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
      "model": {"type": "BPE", "vocab": {)",
      vocab, R"(}, "merges": []}})");
  absl::StatusOr<Metadata> meta = TokenizerMetadataFromHfJson(json, "", "/models/y");
  ASSERT_TRUE(meta.ok()) << meta.status();
  auto tok = MustLoad(*meta);
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(tok->Encode("ab12", false), ElementsAreArray({'a', 'b', '1', '2'}));
  EXPECT_EQ(tok->Decode(tok->Encode("x 9", false)), "x 9");
}

}  // namespace
}  // namespace shardlm
