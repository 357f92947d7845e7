#include "core/hf_config.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace shardlm {
namespace {

using Json = nlohmann::json;

absl::Status Bad(const std::string& source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

// A required positive integer key.
absl::StatusOr<int64_t> PositiveInt(const Json& j, const std::string& source, const char* key) {
  if (!j.contains(key)) return Bad(source, absl::StrCat("missing \"", key, "\""));
  const Json& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
    return Bad(source, absl::StrCat("\"", key, "\" must be a positive integer, got ", v.dump()));
  }
  return v.get<int64_t>();
}

// An optional number key; `fallback` when absent or null.
absl::StatusOr<double> OptionalNumber(const Json& j, const std::string& source, const char* key,
                                      double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) {
    return Bad(source, absl::StrCat("\"", key, "\" must be a number, got ", j[key].dump()));
  }
  return j[key].get<double>();
}

absl::StatusOr<bool> OptionalBool(const Json& j, const std::string& source, const char* key,
                                  bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) {
    return Bad(source, absl::StrCat("\"", key, "\" must be true or false, got ", j[key].dump()));
  }
  return j[key].get<bool>();
}

absl::Status CheckArchitecture(const Json& j, const std::string& source, HfConfig* c) {
  if (!j.contains("model_type") || !j["model_type"].is_string()) {
    return Bad(source, "missing \"model_type\" (expected llama, mistral or qwen2)");
  }
  c->model_type = j["model_type"].get<std::string>();
  if (c->model_type != "llama" && c->model_type != "mistral" && c->model_type != "qwen2") {
    return Bad(source, absl::StrCat("model_type '", c->model_type,
                                    "' is not supported (llama, mistral or qwen2)"));
  }
  const std::string act = j.value("hidden_act", std::string("silu"));
  if (act != "silu") {
    return Bad(source, absl::StrCat("hidden_act '", act, "' is not supported (only silu)"));
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const Json& rs = j["rope_scaling"];
    const std::string type = rs.is_object() ? rs.value("rope_type", rs.value("type", "")) : "";
    if (type != "default") {
      return Bad(source, absl::StrCat("rope_scaling ", rs.dump(),
                                      " is not supported (only null or rope_type \"default\")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadShape(const Json& j, const std::string& source, HfConfig* c) {
  ASSIGN_OR_RETURN(c->hidden_size, PositiveInt(j, source, "hidden_size"));
  ASSIGN_OR_RETURN(c->intermediate_size, PositiveInt(j, source, "intermediate_size"));
  ASSIGN_OR_RETURN(c->num_layers, PositiveInt(j, source, "num_hidden_layers"));
  ASSIGN_OR_RETURN(c->num_heads, PositiveInt(j, source, "num_attention_heads"));
  c->num_kv_heads = c->num_heads;
  if (j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()) {
    ASSIGN_OR_RETURN(c->num_kv_heads, PositiveInt(j, source, "num_key_value_heads"));
  }
  ASSIGN_OR_RETURN(c->vocab_size, PositiveInt(j, source, "vocab_size"));
  ASSIGN_OR_RETURN(c->max_positions, PositiveInt(j, source, "max_position_embeddings"));
  if (c->hidden_size % c->num_heads != 0) {
    return Bad(source, absl::StrCat("hidden_size ", c->hidden_size,
                                    " is not divisible by num_attention_heads ", c->num_heads));
  }
  if (c->num_heads % c->num_kv_heads != 0) {
    return Bad(source, absl::StrCat("num_attention_heads ", c->num_heads,
                                    " is not a multiple of num_key_value_heads ", c->num_kv_heads));
  }
  c->head_dim = c->hidden_size / c->num_heads;
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    ASSIGN_OR_RETURN(const int64_t head_dim, PositiveInt(j, source, "head_dim"));
    if (head_dim != c->head_dim) {
      return Bad(source, absl::StrCat("head_dim ", head_dim, " differs from hidden_size / heads = ",
                                      c->head_dim, ", which the engine does not support"));
    }
  }
  if (c->head_dim % 2 != 0) return Bad(source, absl::StrCat("head_dim ", c->head_dim, " is odd"));
  return absl::OkStatus();
}

absl::Status ReadNumerics(const Json& j, const std::string& source, HfConfig* c) {
  ASSIGN_OR_RETURN(c->rope_theta, OptionalNumber(j, source, "rope_theta", 10000.0));
  ASSIGN_OR_RETURN(c->rms_eps, OptionalNumber(j, source, "rms_norm_eps", 1e-6));
  if (!(c->rope_theta > 0) || !(c->rms_eps > 0) || !(c->rms_eps < 1)) {
    return Bad(source, "rope_theta and rms_norm_eps must be positive (and rms_norm_eps < 1)");
  }
  ASSIGN_OR_RETURN(c->tie_word_embeddings,
                   OptionalBool(j, source, "tie_word_embeddings", false));
  ASSIGN_OR_RETURN(c->attention_bias,
                   OptionalBool(j, source, "attention_bias", c->model_type == "qwen2"));
  ASSIGN_OR_RETURN(const bool mlp_bias, OptionalBool(j, source, "mlp_bias", false));
  if (mlp_bias) return Bad(source, "mlp_bias is not supported");
  if (j.contains("sliding_window") && !j["sliding_window"].is_null()) {
    const bool use = c->model_type != "qwen2" || j.value("use_sliding_window", false);
    if (use) {
      ASSIGN_OR_RETURN(c->sliding_window, PositiveInt(j, source, "sliding_window"));
    }
  }
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) {
    c->torch_dtype = j["torch_dtype"].get<std::string>();
  }
  return absl::OkStatus();
}

}  // namespace

int64_t HfConfig::context_length() const {
  return sliding_window > 0 ? std::min(max_positions, sliding_window) : max_positions;
}

absl::StatusOr<HfConfig> ParseHfConfig(absl::string_view json_text, const std::string& source) {
  Json j;
  try {
    j = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    return Bad(source, absl::StrCat("not valid JSON (", e.what(), ")"));
  }
  if (!j.is_object()) return Bad(source, "not a JSON object");
  HfConfig c;
  RETURN_IF_ERROR(CheckArchitecture(j, source, &c));
  RETURN_IF_ERROR(ReadShape(j, source, &c));
  RETURN_IF_ERROR(ReadNumerics(j, source, &c));
  return c;
}

void AddHfConfigMetadata(const HfConfig& c, const std::string& name, GgufWriter* writer) {
  // qwen2 without biases is the llama graph; mistral uses llama's keys.
  const std::string arch = "llama";
  writer->AddString("general.architecture", arch);
  writer->AddString("general.name", name);
  const std::string p = arch + ".";
  writer->AddUint32(p + "context_length", static_cast<uint32_t>(c.context_length()));
  writer->AddUint32(p + "embedding_length", static_cast<uint32_t>(c.hidden_size));
  writer->AddUint32(p + "feed_forward_length", static_cast<uint32_t>(c.intermediate_size));
  writer->AddUint32(p + "block_count", static_cast<uint32_t>(c.num_layers));
  writer->AddUint32(p + "attention.head_count", static_cast<uint32_t>(c.num_heads));
  writer->AddUint32(p + "attention.head_count_kv", static_cast<uint32_t>(c.num_kv_heads));
  writer->AddUint32(p + "rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  writer->AddFloat32(p + "rope.freq_base", static_cast<float>(c.rope_theta));
  writer->AddFloat32(p + "attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_eps));
  writer->AddUint32(p + "vocab_size", static_cast<uint32_t>(c.vocab_size));
}

}  // namespace shardlm
