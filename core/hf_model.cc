#include "core/hf_model.h"

#include <sys/stat.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "core/hf_config.h"
#include "core/mapped_file.h"
#include "core/safetensors.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace shardlm {
namespace {

using Json = nlohmann::json;

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Every tensor of the folder, by name, with the shard that holds it.
struct ShardSet {
  std::vector<std::shared_ptr<const SafetensorsFile>> files;
  std::map<std::string, std::pair<std::shared_ptr<const SafetensorsFile>, const SafetensorsTensor*>>
      tensors;
};

absl::Status AddShard(std::shared_ptr<const SafetensorsFile> file, ShardSet* set) {
  for (const SafetensorsTensor& t : file->tensors()) {
    if (!set->tensors.emplace(t.name, std::make_pair(file, &t)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(file->source(), ": tensor '", t.name, "' is also in another shard"));
    }
  }
  set->files.push_back(std::move(file));
  return absl::OkStatus();
}

// The shard file names of a model.safetensors.index.json, checked against
// what the shards really hold.
absl::StatusOr<std::map<std::string, std::string>> ReadIndex(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadWholeFile(path, "safetensors index"));
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON (", e.what(), ")"));
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no \"weight_map\" object"));
  }
  std::map<std::string, std::string> map;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": weight_map entry '", tensor, "' is not a file name"));
    }
    const std::string name = file.get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": weight_map names '", name, "', which is not a file in the folder"));
    }
    map[tensor] = name;
  }
  return map;
}

// Names that torch's save_model dropped for tensors sharing storage
// (tied embeddings): its __metadata__ maps each to the name it kept.
void AddAliases(ShardSet* set) {
  for (const auto& file : set->files) {
    for (const auto& [alias, kept] : file->metadata()) {
      auto it = set->tensors.find(kept);
      if (it != set->tensors.end() && !set->tensors.count(alias)) {
        set->tensors.emplace(alias, it->second);
      }
    }
  }
}

absl::StatusOr<ShardSet> LoadShardFiles(const std::string& dir) {
  ShardSet set;
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (IsRegularFile(single)) {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(single));
    RETURN_IF_ERROR(AddShard(std::move(file), &set));
    return set;
  }
  if (!IsRegularFile(index_path)) {
    return absl::NotFoundError(absl::StrCat(
        dir, ": no model.safetensors or model.safetensors.index.json in the model folder"));
  }
  ASSIGN_OR_RETURN(const auto index, ReadIndex(index_path));
  std::map<std::string, bool> shard_names;
  for (const auto& [tensor, shard] : index) shard_names[shard] = true;
  for (const auto& [shard, unused] : shard_names) {
    const std::string path = dir + "/" + shard;
    if (!IsRegularFile(path)) {
      return absl::NotFoundError(
          absl::StrCat(index_path, ": shard ", shard, " is missing from the folder"));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(path));
    RETURN_IF_ERROR(AddShard(std::move(file), &set));
  }
  for (const auto& [tensor, shard] : index) {
    auto it = set.tensors.find(tensor);
    if (it == set.tensors.end() || it->second.first->source() != dir + "/" + shard) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": tensor '", tensor, "' is not in ", shard));
    }
  }
  return set;
}

absl::StatusOr<ShardSet> LoadShards(const std::string& dir) {
  ASSIGN_OR_RETURN(ShardSet set, LoadShardFiles(dir));
  AddAliases(&set);
  return set;
}

absl::StatusOr<DType> GgufTypeOf(const SafetensorsTensor& t, const std::string& source) {
  if (t.dtype == "F32") return DType::kF32;
  if (t.dtype == "F16") return DType::kF16;
  if (t.dtype == "BF16") return DType::kBF16;
  return absl::InvalidArgumentError(absl::StrCat(source, ": tensor '", t.name, "' has dtype ",
                                                 t.dtype, " (expected F32, F16 or BF16)"));
}

// One tensor to carry over: its Hugging Face and GGUF names, the expected
// shape (rows, cols; rows == 0 for 1-D) and whether its rows hold RoPE heads.
struct TensorPlan {
  std::string hf_name;
  std::string gguf_name;
  int64_t rows = 0;
  int64_t cols = 0;
  bool rope_rows = false;
};

std::vector<TensorPlan> PlanTensors(const HfConfig& c) {
  const int64_t d = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  std::vector<TensorPlan> plan = {
      {"model.embed_tokens.weight", "token_embd.weight", c.vocab_size, d},
      {"model.norm.weight", "output_norm.weight", 0, d},
  };
  if (!c.tie_word_embeddings) plan.push_back({"lm_head.weight", "output.weight", c.vocab_size, d});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string h = absl::StrCat("model.layers.", l, "."), g = absl::StrCat("blk.", l, ".");
    plan.push_back({h + "input_layernorm.weight", g + "attn_norm.weight", 0, d});
    plan.push_back({h + "self_attn.q_proj.weight", g + "attn_q.weight", q, d, true});
    plan.push_back({h + "self_attn.k_proj.weight", g + "attn_k.weight", kv, d, true});
    plan.push_back({h + "self_attn.v_proj.weight", g + "attn_v.weight", kv, d});
    plan.push_back({h + "self_attn.o_proj.weight", g + "attn_output.weight", d, q});
    plan.push_back({h + "post_attention_layernorm.weight", g + "ffn_norm.weight", 0, d});
    plan.push_back({h + "mlp.gate_proj.weight", g + "ffn_gate.weight", c.intermediate_size, d});
    plan.push_back({h + "mlp.up_proj.weight", g + "ffn_up.weight", c.intermediate_size, d});
    plan.push_back({h + "mlp.down_proj.weight", g + "ffn_down.weight", d, c.intermediate_size});
  }
  return plan;
}

// Tensors the folder may hold that the GGUF does not need.
bool Ignorable(const std::string& name, const HfConfig& c) {
  return absl::EndsWith(name, "rotary_emb.inv_freq") ||
         (c.tie_word_embeddings && name == "lm_head.weight");
}

absl::Status AddPlannedTensor(const TensorPlan& p, const ShardSet& shards, const HfConfig& c,
                              GgufWriter* writer) {
  const auto& [file, t] = shards.tensors.at(p.hf_name);
  const std::vector<int64_t> want =
      p.rows == 0 ? std::vector<int64_t>{p.cols} : std::vector<int64_t>{p.rows, p.cols};
  if (t->shape != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        file->source(), ": tensor '", p.hf_name, "' has shape [", absl::StrJoin(t->shape, ", "),
        "], config.json implies [", absl::StrJoin(want, ", "), "]"));
  }
  ASSIGN_OR_RETURN(const DType type, GgufTypeOf(*t, file->source()));
  std::vector<int64_t> dims = {p.cols};
  if (p.rows != 0) dims.push_back(p.rows);
  std::shared_ptr<const SafetensorsFile> keep = file;
  const SafetensorsTensor* tensor = t;
  const int64_t head_dim = p.rope_rows ? c.head_dim : 0;
  return writer->AddTensor(
      p.gguf_name, dims, type,
      [keep, tensor, head_dim](const std::function<void(const void*, size_t)>& sink) {
        if (head_dim == 0) {
          sink(tensor->data, tensor->size);
          return absl::OkStatus();
        }
        const int64_t rows = tensor->shape[0];
        const uint64_t row_bytes = tensor->size / rows;
        for (int64_t r = 0; r < rows; ++r) {
          sink(tensor->data + HfRopeSourceRow(r, head_dim) * row_bytes, row_bytes);
        }
        return absl::OkStatus();
      });
}

absl::Status AddTensors(const HfConfig& c, ShardSet shards, GgufWriter* writer) {
  // A tied model may keep its one matrix under either name.
  const std::string embed = "model.embed_tokens.weight", head = "lm_head.weight";
  if (c.tie_word_embeddings && !shards.tensors.count(embed) && shards.tensors.count(head)) {
    shards.tensors.emplace(embed, shards.tensors.at(head));
  }
  const std::vector<TensorPlan> plan = PlanTensors(c);
  std::map<std::string, bool> planned;
  for (const TensorPlan& p : plan) planned[p.hf_name] = true;
  for (const auto& [name, entry] : shards.tensors) {
    if (planned.count(name) || Ignorable(name, c)) continue;
    const bool bias = absl::EndsWith(name, ".bias");
    return absl::InvalidArgumentError(absl::StrCat(
        entry.first->source(), ": tensor '", name, "' is not part of a ", c.model_type,
        " model the engine runs", bias ? " (biases are not supported)" : ""));
  }
  for (const TensorPlan& p : plan) {
    if (!shards.tensors.count(p.hf_name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(shards.files.front()->source(), ": missing tensor '", p.hf_name, "'"));
    }
    RETURN_IF_ERROR(AddPlannedTensor(p, shards, c, writer));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsHfModelDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && IsRegularFile(path + "/config.json");
}

int64_t HfRopeSourceRow(int64_t r, int64_t head_dim) {
  const int64_t head = r / head_dim, within = r % head_dim;
  return head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
}

absl::StatusOr<std::unique_ptr<GgufWriter>> GgufWriterFromHfDir(const std::string& dir,
                                                                GgufMetadata tokenizer) {
  const std::string config_path = dir + "/config.json";
  if (!IsRegularFile(config_path)) {
    return absl::NotFoundError(absl::StrCat(dir, ": not a Hugging Face model folder (no config.json)"));
  }
  ASSIGN_OR_RETURN(const std::string text, ReadWholeFile(config_path, "config.json"));
  ASSIGN_OR_RETURN(const HfConfig config, ParseHfConfig(text, config_path));
  ASSIGN_OR_RETURN(ShardSet shards, LoadShards(dir));
  auto writer = std::make_unique<GgufWriter>();
  std::string name = dir;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  name = name.substr(name.find_last_of('/') + 1);
  AddHfConfigMetadata(config, name, writer.get());
  for (auto& [key, value] : tokenizer) writer->AddValue(key, std::move(value));
  RETURN_IF_ERROR(AddTensors(config, std::move(shards), writer.get()));
  return writer;
}

}  // namespace shardlm
