#include "serve/openai_json.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace shardlm::serve {
namespace {

using Json = nlohmann::json;

// Never throws: invalid UTF-8 in echoed strings becomes U+FFFD.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

absl::Status Bad(absl::string_view message) { return absl::InvalidArgumentError(message); }

// The number at `key` when present; InvalidArgument when not a number or
// outside [lo, hi] (an open lower end when `lo_open`).
absl::Status ReadNumber(const Json& body, const char* key, double lo, double hi, bool lo_open,
                        double* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) return Bad(absl::StrCat("'", key, "' must be a number"));
  const double v = it->get<double>();
  if (!std::isfinite(v) || v > hi || (lo_open ? v <= lo : v < lo)) {
    return Bad(absl::StrCat("'", key, "' must be in ", lo_open ? "(" : "[", lo, ", ", hi, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

// The integer at `key` when present, at least `lo`.
absl::Status ReadInt(const Json& body, const char* key, int64_t lo, std::optional<int64_t>* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer()) return Bad(absl::StrCat("'", key, "' must be an integer"));
  const int64_t v = it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX
                        ? INT64_MAX
                        : it->get<int64_t>();
  if (v < lo) return Bad(absl::StrCat("'", key, "' must be >= ", lo));
  *out = v;
  return absl::OkStatus();
}

absl::Status ReadBool(const Json& body, const char* key, bool* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return Bad(absl::StrCat("'", key, "' must be true or false"));
  *out = it->get<bool>();
  return absl::OkStatus();
}

// `stop`: a string or an array of up to 4 strings.
absl::Status ReadStop(const Json& body, std::vector<std::string>* out) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (it->is_string()) {
    out->push_back(it->get<std::string>());
    return absl::OkStatus();
  }
  if (!it->is_array() || it->size() > 4) {
    return Bad("'stop' must be a string or an array of at most 4 strings");
  }
  for (const Json& s : *it) {
    if (!s.is_string()) return Bad("'stop' must be a string or an array of at most 4 strings");
    out->push_back(s.get<std::string>());
  }
  return absl::OkStatus();
}

// A message's content: a string, null, or an array of {"type":"text"} parts.
absl::StatusOr<std::string> ReadContent(const Json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return std::string();
  const std::string where = absl::StrCat("'messages[", index, "].content'");
  if (!content.is_array()) return Bad(absl::StrCat(where, " must be a string or an array"));
  std::string text;
  for (const Json& part : content) {
    auto type = part.find("type");
    auto value = part.find("text");
    if (!part.is_object() || type == part.end() || *type != "text" || value == part.end() ||
        !value->is_string()) {
      return Bad(absl::StrCat(where, ": only {\"type\": \"text\", \"text\": ...} parts are supported"));
    }
    text += value->get<std::string>();
  }
  return text;
}

absl::Status ReadMessages(const Json& body, std::vector<ChatMessage>* out) {
  auto it = body.find("messages");
  if (it == body.end()) return Bad("missing required field 'messages'");
  if (!it->is_array() || it->empty()) return Bad("'messages' must be a non-empty array");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& m = (*it)[i];
    auto role = m.is_object() ? m.find("role") : m.end();
    if (!m.is_object() || role == m.end() || !role->is_string()) {
      return Bad(absl::StrCat("'messages[", i, "]' must be an object with a string 'role'"));
    }
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "developer" && r != "tool") {
      return Bad(absl::StrCat("'messages[", i, "].role' '", r, "' is not a chat role"));
    }
    auto content = m.find("content");
    ASSIGN_OR_RETURN(std::string text,
                     ReadContent(content == m.end() ? Json() : *content, i));
    out->push_back({r == "developer" ? "system" : r, std::move(text)});
  }
  return absl::OkStatus();
}

// `prompt`: a string, or an array holding one string.
absl::Status ReadPrompt(const Json& body, std::string* out) {
  auto it = body.find("prompt");
  if (it == body.end()) return Bad("missing required field 'prompt'");
  if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    *out = (*it)[0].get<std::string>();
    return absl::OkStatus();
  }
  if (!it->is_string()) return Bad("'prompt' must be a string (one prompt per request)");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// model, n, stream, stream_options.
absl::Status ReadEnvelope(const Json& body, CompletionRequest* r) {
  if (auto it = body.find("model"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return Bad("'model' must be a string");
    r->model = it->get<std::string>();
  }
  std::optional<int64_t> n;
  RETURN_IF_ERROR(ReadInt(body, "n", 1, &n));
  if (n.has_value() && *n != 1) return Bad("'n' must be 1 (one choice per request)");
  RETURN_IF_ERROR(ReadBool(body, "stream", &r->stream));
  RETURN_IF_ERROR(ReadBool(body, "ignore_eos", &r->ignore_eos));
  if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("'stream_options' must be an object");
    RETURN_IF_ERROR(ReadBool(*it, "include_usage", &r->include_usage));
  }
  return absl::OkStatus();
}

// max_tokens (or max_completion_tokens), temperature, top_p, top_k, seed, stop.
absl::Status ReadSampling(const Json& body, CompletionRequest* r) {
  RETURN_IF_ERROR(ReadInt(body, "max_tokens", 0, &r->max_tokens));
  if (!r->max_tokens.has_value()) {
    RETURN_IF_ERROR(ReadInt(body, "max_completion_tokens", 0, &r->max_tokens));
  }
  RETURN_IF_ERROR(ReadNumber(body, "temperature", 0, 2, false, &r->temperature));
  RETURN_IF_ERROR(ReadNumber(body, "top_p", 0, 1, true, &r->top_p));
  std::optional<int64_t> top_k;
  RETURN_IF_ERROR(ReadInt(body, "top_k", 0, &top_k));
  if (top_k.has_value()) r->top_k = static_cast<int>(std::min<int64_t>(*top_k, 1 << 30));
  if (auto it = body.find("seed"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return Bad("'seed' must be an integer");
    r->seed = it->is_number_unsigned() ? it->get<uint64_t>()
                                       : static_cast<uint64_t>(it->get<int64_t>());
  }
  return ReadStop(body, &r->stop);
}

Json ChoiceFor(const ResponseMeta& meta, absl::string_view text, const char* finish_reason,
               bool first, bool whole) {
  Json choice = {{"index", 0}};
  const Json reason = finish_reason == nullptr ? Json() : Json(finish_reason);
  if (!meta.chat) {
    choice["text"] = std::string(text);
    choice["logprobs"] = nullptr;
  } else if (whole) {
    choice["message"] = {{"role", "assistant"}, {"content", std::string(text)}};
    choice["logprobs"] = nullptr;
  } else {
    choice["delta"] = Json::object();
    if (first) choice["delta"]["role"] = "assistant";
    if (!text.empty() || first) choice["delta"]["content"] = std::string(text);
  }
  choice["finish_reason"] = reason;
  return choice;
}

Json Envelope(const ResponseMeta& meta, bool chunk) {
  const char* object = meta.chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                 : "text_completion";
  return {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

Json UsageJson(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

}  // namespace

absl::StatusOr<CompletionRequest> ParseCompletionRequest(absl::string_view body, bool chat) {
  const Json json = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Bad("the request body is not valid JSON");
  if (!json.is_object()) return Bad("the request body must be a JSON object");
  CompletionRequest r;
  r.chat = chat;
  RETURN_IF_ERROR(chat ? ReadMessages(json, &r.messages) : ReadPrompt(json, &r.prompt));
  RETURN_IF_ERROR(ReadEnvelope(json, &r));
  RETURN_IF_ERROR(ReadSampling(json, &r));
  return r;
}

std::string CompletionJson(const ResponseMeta& meta, absl::string_view text,
                           absl::string_view finish_reason, const Usage& usage) {
  Json j = Envelope(meta, /*chunk=*/false);
  const std::string reason(finish_reason);
  j["choices"] = Json::array({ChoiceFor(meta, text, reason.c_str(), false, /*whole=*/true)});
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

std::string ChunkJson(const ResponseMeta& meta, absl::string_view text,
                      const char* finish_reason, bool first) {
  Json j = Envelope(meta, /*chunk=*/true);
  j["choices"] = Json::array({ChoiceFor(meta, text, finish_reason, first, /*whole=*/false)});
  return Dump(j);
}

std::string UsageChunkJson(const ResponseMeta& meta, const Usage& usage) {
  Json j = Envelope(meta, /*chunk=*/true);
  j["choices"] = Json::array();
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

std::string ModelsJson(absl::string_view model, int64_t created) {
  const Json entry = {{"id", std::string(model)},
                      {"object", "model"},
                      {"created", created},
                      {"owned_by", "shardlm"}};
  return Dump({{"object", "list"}, {"data", Json::array({entry})}});
}

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 413;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kFailedPrecondition:
      return 503;
    default:
      return 500;
  }
}

std::string ErrorJson(int http_status, absl::string_view message) {
  const char* type = http_status >= 500 ? "server_error" : "invalid_request_error";
  Json code = nullptr;
  if (http_status == 404) code = "not_found";
  if (http_status == 413) code = "request_too_large";
  if (http_status == 503) code = "service_unavailable";
  return Dump({{"error",
                {{"message", std::string(message)}, {"type", type}, {"param", nullptr},
                 {"code", code}}}});
}

std::string ErrorJson(const absl::Status& status) {
  return ErrorJson(HttpStatusFor(status), status.message());
}

}  // namespace shardlm::serve
