#include "core/hf_model.h"

#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "core/gguf_writer.h"
#include "core/safetensors.h"
#include "core/synthetic_model.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<GgufFile> SyntheticGguf(bool tied, DType type) {
  SyntheticModelSpec spec;
  spec.dim = 64;
  spec.ffn_dim = 96;
  spec.n_layers = 2;
  spec.n_heads = 4;
  spec.n_kv_heads = 2;
  spec.vocab_size = 300;
  spec.rms_eps = 1e-6f;
  spec.tied_output = tied;
  spec.type = type;
  spec.name = "hfmodel";
  GgufWriter writer;
  EXPECT_TRUE(AddSyntheticModel(spec, &writer).ok());
  auto bytes = writer.Serialize();
  EXPECT_TRUE(bytes.ok());
  auto file = GgufFile::FromBytes(*bytes, "synthetic");
  EXPECT_TRUE(file.ok()) << file.status();
  return std::move(*file);
}

// GGUF tensor name -> Hugging Face name (the inverse of the loader's map).
std::string HfName(const std::string& gguf) {
  static const std::pair<const char*, const char*> kLayer[] = {
      {"attn_norm", "input_layernorm"},       {"attn_q", "self_attn.q_proj"},
      {"attn_k", "self_attn.k_proj"},         {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"},    {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},          {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf == "output_norm.weight") return "model.norm.weight";
  if (gguf == "output.weight") return "lm_head.weight";
  std::string out = absl::StrReplaceAll(gguf, {{"blk.", "model.layers."}});
  for (const auto& [g, h] : kLayer) out = absl::StrReplaceAll(out, {{absl::StrCat(".", g, "."), absl::StrCat(".", h, ".")}});
  return out;
}

std::string DTypeString(DType t) {
  return t == DType::kF32 ? "F32" : t == DType::kF16 ? "F16" : "BF16";
}

// A Hugging Face entry for a GGUF tensor: rows un-permuted for q/k.
SafetensorsEntry ToHf(const GgufTensorInfo& t, int64_t head_dim) {
  SafetensorsEntry e{HfName(t.name), DTypeString(t.type), {}, {}};
  for (auto it = t.dims.rbegin(); it != t.dims.rend(); ++it) e.shape.push_back(*it);
  e.bytes.assign(reinterpret_cast<const char*>(t.data), t.size_bytes);
  if (absl::StrContains(t.name, "attn_q.") || absl::StrContains(t.name, "attn_k.")) {
    const int64_t rows = t.dims[1];
    const uint64_t rb = t.size_bytes / rows;
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(&e.bytes[HfRopeSourceRow(r, head_dim) * rb], t.data + r * rb, rb);
    }
  }
  return e;
}

std::string WriteFile(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  return path;
}

std::string kConfig = R"({"architectures":["LlamaForCausalLM"],"model_type":"llama",
  "hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,"num_attention_heads":4,
  "num_key_value_heads":2,"vocab_size":300,"max_position_embeddings":512,"rms_norm_eps":1e-06,
  "rope_theta":10000.0,"rope_scaling":null,"tie_word_embeddings":TIED,"hidden_act":"silu"})";

// Writes `gguf` as a Hugging Face folder (one shard, or two with an index).
std::string MakeHfDir(const std::string& name, const GgufFile& gguf, bool tied, bool sharded) {
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  mkdir(dir.c_str(), 0755);
  WriteFile(dir + "/config.json", absl::StrReplaceAll(kConfig, {{"TIED", tied ? "true" : "false"}}));
  std::vector<SafetensorsEntry> a, b;
  for (const GgufTensorInfo& t : gguf.tensors()) {
    (sharded && absl::StrContains(t.name, "blk.1.") ? b : a).push_back(ToHf(t, 16));
  }
  if (!sharded) {
    WriteFile(dir + "/model.safetensors", EncodeSafetensors(a));
    return dir;
  }
  WriteFile(dir + "/model-00001-of-00002.safetensors", EncodeSafetensors(a));
  WriteFile(dir + "/model-00002-of-00002.safetensors", EncodeSafetensors(b));
  std::string index = R"({"metadata":{},"weight_map":{)";
  for (const auto& e : a) index += absl::StrCat("\"", e.name, "\":\"model-00001-of-00002.safetensors\",");
  for (const auto& e : b) index += absl::StrCat("\"", e.name, "\":\"model-00002-of-00002.safetensors\",");
  index.back() = '}';
  WriteFile(dir + "/model.safetensors.index.json", index + "}");
  return dir;
}

GgufMetadata TokenizerOf(const GgufFile& file) {
  GgufMetadata out;
  for (const auto& kv : file.metadata()) {
    if (absl::StartsWith(kv.first, "tokenizer.")) out.push_back(kv);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<GgufFile>> Convert(const std::string& dir, const GgufFile& ref) {
  auto writer = GgufWriterFromHfDir(dir, TokenizerOf(ref));
  if (!writer.ok()) return writer.status();
  auto bytes = (*writer)->Serialize();
  if (!bytes.ok()) return bytes.status();
  return GgufFile::FromBytes(*bytes, dir);
}

void ExpectSameModel(const GgufFile& ref, const GgufFile& got) {
  ASSERT_EQ(ref.tensors().size(), got.tensors().size());
  for (const GgufTensorInfo& t : ref.tensors()) {
    const GgufTensorInfo* g = got.FindTensor(t.name);
    ASSERT_NE(g, nullptr) << t.name;
    EXPECT_EQ(g->dims, t.dims) << t.name;
    EXPECT_EQ(g->type, t.type) << t.name;
    ASSERT_EQ(g->size_bytes, t.size_bytes) << t.name;
    EXPECT_EQ(std::memcmp(g->data, t.data, t.size_bytes), 0) << t.name;
  }
  for (const char* key : {"llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
                          "llama.attention.head_count", "llama.attention.head_count_kv",
                          "llama.context_length"}) {
    EXPECT_EQ(*got.GetUint(key), *ref.GetUint(key)) << key;
  }
  EXPECT_FLOAT_EQ(*got.GetFloat("llama.attention.layer_norm_rms_epsilon"), 1e-6f);
  EXPECT_EQ(*got.GetString("general.architecture"), "llama");
}

TEST(HfModelTest, RopePermutationInterleavesTheTwoHalvesOfEachHead) {
  // GGUF pairs (2i, 2i+1) are Hugging Face's (i, i + head_dim/2).
  for (int64_t head = 0; head < 3; ++head) {
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_EQ(HfRopeSourceRow(head * 8 + 2 * i, 8), head * 8 + i);
      EXPECT_EQ(HfRopeSourceRow(head * 8 + 2 * i + 1, 8), head * 8 + 4 + i);
    }
  }
}

TEST(HfModelTest, FolderConvertsToTheSameTensorsAndConfig) {
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (bool tied : {false, true}) {
      for (bool sharded : {false, true}) {
        SCOPED_TRACE(absl::StrCat(DTypeString(type), tied ? " tied" : "", sharded ? " sharded" : ""));
        std::unique_ptr<GgufFile> ref = SyntheticGguf(tied, type);
        const std::string dir = MakeHfDir(absl::StrCat("m", static_cast<int>(type), tied, sharded),
                                          *ref, tied, sharded);
        auto got = Convert(dir, *ref);
        ASSERT_TRUE(got.ok()) << got.status();
        ExpectSameModel(*ref, **got);
        EXPECT_EQ(*(*got)->GetString("general.name"), absl::StrCat("m", static_cast<int>(type), tied, sharded));
      }
    }
  }
}

// Runs the conversion on a copy of a good folder after `mutate` and
// returns the error.
std::string ErrorAfter(const std::string& name, const std::function<void(const std::string&)>& mutate,
                       bool sharded = false) {
  std::unique_ptr<GgufFile> ref = SyntheticGguf(false, DType::kF32);
  const std::string dir = MakeHfDir(name, *ref, false, sharded);
  mutate(dir);
  auto got = Convert(dir, *ref);
  EXPECT_FALSE(got.ok());
  return got.ok() ? "" : std::string(got.status().message());
}

std::string Config(const std::string& from, const std::string& to) {
  return absl::StrReplaceAll(absl::StrReplaceAll(kConfig, {{"TIED", "false"}}), {{from, to}});
}

TEST(HfModelTest, MalformedConfigGivesClearErrors) {
  auto with_config = [](const std::string& text) {
    return [text](const std::string& dir) { WriteFile(dir + "/config.json", text); };
  };
  EXPECT_THAT(ErrorAfter("c1", with_config("{not json")), HasSubstr("config.json: not valid JSON"));
  EXPECT_THAT(ErrorAfter("c2", with_config("[]")), HasSubstr("not a JSON object"));
  EXPECT_THAT(ErrorAfter("c3", with_config(Config("\"hidden_size\":64,", ""))),
              HasSubstr("missing \"hidden_size\""));
  EXPECT_THAT(ErrorAfter("c4", with_config(Config("\"hidden_size\":64", "\"hidden_size\":\"64\""))),
              HasSubstr("\"hidden_size\" must be a positive integer"));
  EXPECT_THAT(ErrorAfter("c5", with_config(Config("\"llama\"", "\"gpt_neox\""))),
              HasSubstr("model_type 'gpt_neox' is not supported"));
  EXPECT_THAT(ErrorAfter("c6", with_config(Config("\"rope_scaling\":null",
                                                  R"("rope_scaling":{"rope_type":"llama3","factor":8})"))),
              HasSubstr("rope_scaling"));
  EXPECT_THAT(ErrorAfter("c7", with_config(Config("\"num_key_value_heads\":2", "\"num_key_value_heads\":3"))),
              HasSubstr("not a multiple of num_key_value_heads 3"));
  EXPECT_THAT(ErrorAfter("c8", with_config(Config("\"silu\"", "\"gelu\""))),
              HasSubstr("hidden_act 'gelu'"));
  EXPECT_THAT(ErrorAfter("c9", [](const std::string& dir) { std::remove((dir + "/config.json").c_str()); }),
              HasSubstr("no config.json"));
}

TEST(HfModelTest, TensorProblemsGiveClearErrors) {
  std::unique_ptr<GgufFile> ref = SyntheticGguf(false, DType::kF32);
  auto rewrite = [&](std::function<void(std::vector<SafetensorsEntry>*)> edit) {
    return [&ref, edit](const std::string& dir) {
      std::vector<SafetensorsEntry> entries;
      for (const GgufTensorInfo& t : ref->tensors()) entries.push_back(ToHf(t, 16));
      edit(&entries);
      WriteFile(dir + "/model.safetensors", EncodeSafetensors(entries));
    };
  };
  EXPECT_THAT(ErrorAfter("t1", rewrite([](auto* e) { e->pop_back(); })), HasSubstr("missing tensor"));
  EXPECT_THAT(ErrorAfter("t2", rewrite([](auto* e) {
                           e->push_back({"model.layers.0.self_attn.q_proj.bias", "F32", {64}, std::string(256, '\0')});
                         })),
              HasSubstr("biases are not supported"));
  EXPECT_THAT(ErrorAfter("t3", rewrite([](auto* e) {
                           for (auto& x : *e) {
                             if (x.name == "model.norm.weight") x = {x.name, "F32", {32}, std::string(128, '\0')};
                           }
                         })),
              HasSubstr("'model.norm.weight' has shape [32], config.json implies [64]"));
  EXPECT_THAT(ErrorAfter("t4", rewrite([](auto* e) {
                           for (auto& x : *e) {
                             if (x.name == "model.norm.weight") x.dtype = "I32";
                           }
                         })),
              HasSubstr("dtype I32"));
  EXPECT_THAT(ErrorAfter("t5", [](const std::string& dir) {
                WriteFile(dir + "/model.safetensors", "garbage!garbage!");
              }),
              HasSubstr("model.safetensors: header length"));
  EXPECT_THAT(ErrorAfter("t6", [](const std::string& dir) { std::remove((dir + "/model.safetensors").c_str()); }),
              HasSubstr("no model.safetensors or model.safetensors.index.json"));
}

TEST(HfModelTest, ShardIndexProblemsGiveClearErrors) {
  EXPECT_THAT(ErrorAfter("s1",
                         [](const std::string& dir) {
                           std::remove((dir + "/model-00002-of-00002.safetensors").c_str());
                         },
                         true),
              HasSubstr("shard model-00002-of-00002.safetensors is missing"));
  EXPECT_THAT(ErrorAfter("s2",
                         [](const std::string& dir) {
                           WriteFile(dir + "/model.safetensors.index.json",
                                     R"({"weight_map":{"model.norm.weight":"../x.safetensors"}})");
                         },
                         true),
              HasSubstr("not a file in the folder"));
  EXPECT_THAT(ErrorAfter("s3",
                         [](const std::string& dir) {
                           WriteFile(dir + "/model.safetensors.index.json",
                                     R"({"weight_map":{"model.norm.weight":"model-00002-of-00002.safetensors"}})");
                         },
                         true),
              HasSubstr("'model.norm.weight' is not in model-00002-of-00002.safetensors"));
  EXPECT_THAT(ErrorAfter("s4",
                         [](const std::string& dir) {
                           WriteFile(dir + "/model.safetensors.index.json", R"({"metadata":{}})");
                         },
                         true),
              HasSubstr("no \"weight_map\""));
}

}  // namespace
}  // namespace shardlm
