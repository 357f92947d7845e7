#include "core/hf_tokenizer.h"

#include <cstdint>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/bpe.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace shardlm {
namespace {

using Json = nlohmann::json;
using Metadata = std::vector<std::pair<std::string, GgufValue>>;

constexpr char kSpaceMarker[] = "\xE2\x96\x81";  // U+2581 "▁"

// Token types (tokenizer.ggml.token_type).
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

GgufValue StringValue(const std::string& s) {
  GgufValue v;
  v.type = GgufType::kString;
  v.s = s;
  return v;
}

GgufValue Uint32Value(uint32_t x) {
  GgufValue v;
  v.type = GgufType::kUint32;
  v.u = x;
  v.i = x;
  return v;
}

GgufValue BoolValue(bool b) {
  GgufValue v;
  v.type = GgufType::kBool;
  v.b = b;
  return v;
}

GgufValue StringArray(const std::vector<std::string>& items) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = GgufType::kString;
  for (const std::string& s : items) v.arr.push_back(StringValue(s));
  return v;
}

GgufValue Int32Array(const std::vector<int32_t>& items) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = GgufType::kInt32;
  for (int32_t x : items) {
    GgufValue e;
    e.type = GgufType::kInt32;
    e.i = x;
    e.u = static_cast<uint64_t>(x);
    v.arr.push_back(e);
  }
  return v;
}

GgufValue Float32Array(const std::vector<float>& items) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = GgufType::kFloat32;
  for (float x : items) {
    GgufValue e;
    e.type = GgufType::kFloat32;
    e.f = x;
    v.arr.push_back(e);
  }
  return v;
}

absl::Status Error(const std::string& file, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", what));
}

// The string member `key` of object `j`, or nullopt when absent or null.
absl::StatusOr<std::optional<std::string>> OptString(const Json& j, const char* key,
                                                     const std::string& file,
                                                     const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Error(file, absl::StrCat(where, key, " is not a string"));
  return std::optional<std::string>(it->get<std::string>());
}

// The "type" of a normalizer/pre-tokenizer object ("" when not an object).
std::string TypeOf(const Json& j) {
  if (!j.is_object()) return "";
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The items of a Sequence (under `list_key`) or the object itself.
std::vector<const Json*> Flatten(const Json& j, const char* list_key) {
  std::vector<const Json*> out;
  if (TypeOf(j) == "Sequence" && j.contains(list_key) && j[list_key].is_array()) {
    for (const Json& item : j[list_key]) out.push_back(&item);
  } else if (!j.is_null()) {
    out.push_back(&j);
  }
  return out;
}

// tokenizer_config.json's chat_template: a Jinja string, or a list of
// named templates of which the "default" one (else the first) is used.
std::optional<std::string> ChatTemplate(const Json& config) {
  if (!config.is_object() || !config.contains("chat_template")) return std::nullopt;
  const Json& t = config["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (!t.is_array()) return std::nullopt;
  std::optional<std::string> first;
  for (const Json& e : t) {
    if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
    if (!first) first = e["template"].get<std::string>();
    if (e.value("name", "") == "default") return e["template"].get<std::string>();
  }
  return first;
}

// A bos_token/eos_token value of tokenizer_config.json: a string or
// {"content": ...}.
std::optional<std::string> ConfigToken(const Json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

struct Parsed {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  bool ignore_merges = false;
};

// model.vocab, model.merges and added_tokens.
absl::Status ParseModel(const Json& root, const std::string& file, Parsed* out) {
  auto model_it = root.find("model");
  if (model_it == root.end() || !model_it->is_object()) {
    return Error(file, "missing \"model\" object");
  }
  const Json& model = *model_it;
  const std::string type = TypeOf(model);
  if (type != "BPE" && !(type.empty() && model.contains("merges"))) {
    return absl::UnimplementedError(absl::StrCat(
        file, ": model.type is \"", type, "\"; only BPE tokenizers are supported"));
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && model[key] != "") {
      return absl::UnimplementedError(absl::StrCat(file, ": model.", key, " is not supported"));
    }
  }
  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) {
    return Error(file, "model.vocab is missing or not an object");
  }
  absl::flat_hash_map<int64_t, std::string> by_id;
  int64_t max_id = -1;
  const auto put = [&](int64_t id, const std::string& token) { by_id[id] = token; max_id = std::max(max_id, id); };
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
        it->get<int64_t>() >= std::numeric_limits<int32_t>::max()) {
      return Error(file, absl::StrCat("model.vocab[\"", it.key(), "\"] is not a valid id"));
    }
    put(it->get<int64_t>(), it.key());
  }
  absl::flat_hash_map<int64_t, int32_t> added_type;
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    const Json& added = root["added_tokens"];
    if (!added.is_array()) return Error(file, "added_tokens is not an array");
    for (size_t i = 0; i < added.size(); ++i) {
      const Json& t = added[i];
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
          t["id"].get<int64_t>() < 0 || t["id"].get<int64_t>() >= std::numeric_limits<int32_t>::max() ||
          !t.contains("content") || !t["content"].is_string()) {
        return Error(file, absl::StrCat("added_tokens[", i, "] needs an integer id and a string content"));
      }
      const int64_t id = t["id"].get<int64_t>();
      put(id, t["content"].get<std::string>());
      const bool special = t.contains("special") && t["special"].is_boolean() && t["special"].get<bool>();
      added_type[id] = special ? kControl : kUserDefined;
    }
  }
  if (max_id < 0) return Error(file, "model.vocab is empty");
  out->tokens.resize(max_id + 1);
  out->types.assign(max_id + 1, kNormal);
  for (int64_t id = 0; id <= max_id; ++id) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      return Error(file, absl::StrCat("model.vocab has no token with id ", id, " (ids must be 0..",
                                      max_id, " without holes)"));
    }
    out->tokens[id] = it->second;
    auto t = added_type.find(id);
    if (t != added_type.end()) out->types[id] = t->second;
  }
  auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) {
    return Error(file, "model.merges is missing or not an array");
  }
  for (size_t i = 0; i < merges_it->size(); ++i) {
    const Json& m = (*merges_it)[i];
    std::string merge;
    if (m.is_string()) {
      merge = m.get<std::string>();
      const size_t space = merge.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == merge.size() ||
          merge.find(' ', space + 1) != std::string::npos) {
        return Error(file, absl::StrCat("model.merges[", i, "] = \"", merge,
                                        "\" is not two tokens separated by one space"));
      }
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      const std::string left = m[0].get<std::string>(), right = m[1].get<std::string>();
      if (left.empty() || right.empty() || left.find(' ') != std::string::npos ||
          right.find(' ') != std::string::npos) {
        return Error(file, absl::StrCat("model.merges[", i, "] has an empty part or a space (",
                                        "GGUF merges are \"left right\")"));
      }
      merge = absl::StrCat(left, " ", right);
    } else {
      return Error(file, absl::StrCat("model.merges[", i, "] is neither \"a b\" nor [\"a\", \"b\"]"));
    }
    out->merges.push_back(std::move(merge));
  }
  if (model.contains("ignore_merges") && model["ignore_merges"].is_boolean()) {
    out->ignore_merges = model["ignore_merges"].get<bool>();
  }
  return absl::OkStatus();
}

// True when `normalizer` is SentencePiece's: Prepend "▁" and Replace " " by "▁".
bool IsSpmNormalizer(const Json& normalizer) {
  bool prepend = false, replace = false;
  for (const Json* n : Flatten(normalizer, "normalizers")) {
    const std::string type = TypeOf(*n);
    if (type == "Prepend" && n->value("prepend", "") == kSpaceMarker) {
      prepend = true;
    } else if (type == "Replace" && n->contains("pattern") && (*n)["pattern"].is_object() &&
               (*n)["pattern"].value("String", "") == " " && n->value("content", "") == kSpaceMarker) {
      replace = true;
    } else {
      return false;
    }
  }
  return prepend && replace;
}

// Byte-level: fills tokenizer.ggml.pre (and shardlm keys) from the
// pre-tokenizer and normalizer.
absl::Status ByteLevelKeys(const Json& pre_tokenizer, const Json& normalizer,
                           const std::string& file, const Parsed& parsed, Metadata* meta) {
  std::optional<std::string> pattern;
  bool byte_level_regex = false;
  for (const Json* p : Flatten(pre_tokenizer, "pretokenizers")) {
    const std::string type = TypeOf(*p);
    if (type == "ByteLevel") {
      if (p->value("add_prefix_space", false)) {
        return absl::UnimplementedError(
            absl::StrCat(file, ": pre_tokenizer ByteLevel.add_prefix_space = true is not supported"));
      }
      byte_level_regex = p->value("use_regex", true);
    } else if (type == "Split") {
      const Json& pat = p->contains("pattern") ? (*p)["pattern"] : Json();
      if (!pat.is_object() || !pat.contains("Regex") || !pat["Regex"].is_string()) {
        return Error(file, "pre_tokenizer Split.pattern.Regex is missing or not a string");
      }
      if (p->value("behavior", "") != "Isolated" || p->value("invert", false) || pattern) {
        return absl::UnimplementedError(absl::StrCat(
            file, ": pre_tokenizer Split is supported once, with behavior Isolated, not inverted"));
      }
      pattern = pat["Regex"].get<std::string>();
    } else {
      return absl::UnimplementedError(
          absl::StrCat(file, ": pre_tokenizer type \"", type, "\" is not supported"));
    }
  }
  if (pattern && byte_level_regex) {
    return absl::UnimplementedError(absl::StrCat(
        file, ": pre_tokenizer has both a Split regex and ByteLevel.use_regex = true"));
  }
  if (!pattern && !byte_level_regex) {
    return absl::UnimplementedError(
        absl::StrCat(file, ": byte-level pre_tokenizer without any split regex is not supported"));
  }
  if (!pattern) pattern = bpe::kGpt2Pattern;
  std::string pre;
  if (*pattern == bpe::kLlama3Pattern) {
    pre = "llama-bpe";
  } else if (*pattern == bpe::kGpt2Pattern) {
    pre = "gpt2";
  } else if (*pattern == bpe::kQwen2Pattern) {
    pre = "qwen2";
  } else {
    absl::StatusOr<std::unique_ptr<bpe::RegexSplitter>> check = bpe::RegexSplitter::Create(*pattern);
    if (!check.ok()) return Error(file, absl::StrCat("pre_tokenizer: ", check.status().message()));
    pre = "shardlm-regex";
    meta->emplace_back("tokenizer.shardlm.pre_regex", StringValue(*pattern));
  }
  meta->emplace_back("tokenizer.ggml.pre", StringValue(pre));
  if (parsed.ignore_merges != (pre == "llama-bpe")) {
    meta->emplace_back("tokenizer.shardlm.ignore_merges", BoolValue(parsed.ignore_merges));
  }
  for (const Json* n : Flatten(normalizer, "normalizers")) {
    if (TypeOf(*n) != "NFC") {
      return absl::UnimplementedError(absl::StrCat(
          file, ": normalizer \"", TypeOf(*n), "\" is not supported with a byte-level tokenizer"));
    }
    meta->emplace_back("tokenizer.shardlm.normalizer", StringValue("NFC"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<Metadata> Convert(const std::string& tokenizer_json, const std::string& config_json,
                                 const std::string& dir) {
  const std::string file = absl::StrCat(dir, "/tokenizer.json");
  const std::string config_file = absl::StrCat(dir, "/tokenizer_config.json");
  const Json root = Json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) return Error(file, "not a JSON object");
  Json config = Json::object();
  if (!config_json.empty()) {
    config = Json::parse(config_json, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return Error(config_file, "not a JSON object");
    }
  }
  Parsed parsed;
  RETURN_IF_ERROR(ParseModel(root, file, &parsed));
  absl::flat_hash_map<std::string, int32_t> id_of;
  for (int32_t id = 0; id < static_cast<int32_t>(parsed.tokens.size()); ++id) {
    if (parsed.types[id] != kNormal || !id_of.contains(parsed.tokens[id])) {
      id_of[parsed.tokens[id]] = id;  // added tokens win over the vocab
    }
  }
  Metadata meta;
  const Json pre_tokenizer = root.value("pre_tokenizer", Json());
  const Json normalizer = root.value("normalizer", Json());
  bool byte_level = false;
  for (const Json* p : Flatten(pre_tokenizer, "pretokenizers")) {
    byte_level = byte_level || TypeOf(*p) == "ByteLevel";
  }
  const Json& model = root["model"];
  if (byte_level) {
    meta.emplace_back("tokenizer.ggml.model", StringValue("gpt2"));
    RETURN_IF_ERROR(ByteLevelKeys(pre_tokenizer, normalizer, file, parsed, &meta));
  } else {
    const bool metaspace = TypeOf(pre_tokenizer) == "Metaspace" &&
                           pre_tokenizer.value("replacement", "") == kSpaceMarker &&
                           pre_tokenizer.value("prepend_scheme", "always") != "never" &&
                           !pre_tokenizer.value("split", false) && normalizer.is_null();
    if (!metaspace && !(pre_tokenizer.is_null() && IsSpmNormalizer(normalizer))) {
      return absl::UnimplementedError(absl::StrCat(
          file, ": unsupported pre_tokenizer \"", TypeOf(pre_tokenizer), "\" / normalizer \"",
          TypeOf(normalizer),
          "\" (supported: ByteLevel, optionally after a Split regex; SentencePiece-style Prepend "
          "+ Replace \"▁\" normalizer or Metaspace)"));
    }
    if (parsed.ignore_merges) {
      return absl::UnimplementedError(
          absl::StrCat(file, ": model.ignore_merges is not supported without ByteLevel"));
    }
    meta.emplace_back("tokenizer.ggml.model", StringValue("llama"));
    for (size_t id = 0; id < parsed.tokens.size(); ++id) {
      const std::string& t = parsed.tokens[id];
      if (parsed.types[id] == kNormal && t.size() == 6 && t.compare(0, 3, "<0x") == 0 &&
          t[5] == '>' && isxdigit(static_cast<unsigned char>(t[3])) &&
          isxdigit(static_cast<unsigned char>(t[4]))) {
        parsed.types[id] = kByte;
      }
    }
    // Scores for llama.cpp's score-merging SPM tokenizer: -(rank of the
    // first merge that makes the token); tokens no merge makes get the
    // lowest score.
    std::vector<float> scores(parsed.tokens.size(), 0.0f);
    std::vector<bool> made(parsed.tokens.size(), false);
    for (size_t rank = 0; rank < parsed.merges.size(); ++rank) {
      std::string joined = parsed.merges[rank];
      joined.erase(joined.find(' '), 1);
      auto it = id_of.find(joined);
      if (it != id_of.end() && !made[it->second]) {
        made[it->second] = true;
        scores[it->second] = -static_cast<float>(rank);
      }
    }
    for (size_t id = 0; id < scores.size(); ++id) {
      if (!made[id] && parsed.types[id] == kNormal) {
        scores[id] = -static_cast<float>(parsed.merges.size());
      }
    }
    meta.emplace_back("tokenizer.ggml.scores", Float32Array(scores));
  }
  // Special ids.
  const auto id_for = [&](const std::string& token, const std::string& where,
                          const std::string& in_file) -> absl::StatusOr<int32_t> {
    auto it = id_of.find(token);
    if (it == id_of.end()) {
      return Error(in_file, absl::StrCat(where, " \"", token, "\" is not in the vocabulary"));
    }
    return it->second;
  };
  ASSIGN_OR_RETURN(std::optional<std::string> unk, OptString(model, "unk_token", file, "model."));
  std::optional<int32_t> unk_id;
  if (unk) {
    ASSIGN_OR_RETURN(unk_id, id_for(*unk, "model.unk_token", file));
    parsed.types[*unk_id] = kUnknown;
  }
  std::vector<std::pair<std::string, uint32_t>> ids;
  for (const auto& [key, gguf_key] : {std::pair<const char*, const char*>{"bos_token", "tokenizer.ggml.bos_token_id"},
                                      {"eos_token", "tokenizer.ggml.eos_token_id"}}) {
    if (std::optional<std::string> token = ConfigToken(config, key)) {
      ASSIGN_OR_RETURN(int32_t id, id_for(*token, key, config_file));
      ids.emplace_back(gguf_key, id);
    }
  }
  if (unk_id) ids.emplace_back("tokenizer.ggml.unknown_token_id", *unk_id);
  meta.emplace_back("tokenizer.ggml.tokens", StringArray(parsed.tokens));
  meta.emplace_back("tokenizer.ggml.token_type", Int32Array(parsed.types));
  meta.emplace_back("tokenizer.ggml.merges", StringArray(parsed.merges));
  for (const auto& [key, id] : ids) meta.emplace_back(key, Uint32Value(id));
  std::optional<bool> add_bos;
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    add_bos = config["add_bos_token"].get<bool>();
  } else {
    const Json post = root.value("post_processor", Json());
    if (TypeOf(post) == "TemplateProcessing" && post.contains("single") &&
        post["single"].is_array()) {
      add_bos = !post["single"].empty() && post["single"][0].is_object() &&
                post["single"][0].contains("SpecialToken");
    } else if (!post.is_null()) {
      add_bos = false;
    }
  }
  if (add_bos) meta.emplace_back("tokenizer.ggml.add_bos_token", BoolValue(*add_bos));
  if (std::optional<std::string> chat = ChatTemplate(config)) {
    GgufValue v;
    v.type = GgufType::kString;
    v.s = *chat;
    meta.emplace_back("tokenizer.chat_template", std::move(v));
  }
  return meta;
}

}  // namespace

absl::StatusOr<Metadata> TokenizerMetadataFromHfJson(const std::string& tokenizer_json,
                                                     const std::string& config_json,
                                                     const std::string& dir) {
  try {
    return Convert(tokenizer_json, config_json, dir);
  } catch (const nlohmann::json::exception& e) {  // a field of an unexpected JSON type
    return absl::InvalidArgumentError(
        absl::StrCat(dir, "/tokenizer.json or tokenizer_config.json: unexpected JSON: ", e.what()));
  }
}

absl::StatusOr<Metadata> TokenizerMetadataFromHfDir(const std::string& dir) {
  ASSIGN_OR_RETURN(std::string tokenizer_json, ReadFile(absl::StrCat(dir, "/tokenizer.json")));
  std::string config_json;
  absl::StatusOr<std::string> config = ReadFile(absl::StrCat(dir, "/tokenizer_config.json"));
  if (config.ok()) config_json = *std::move(config);
  return TokenizerMetadataFromHfJson(tokenizer_json, config_json, dir);
}

}  // namespace shardlm
