// The OpenAI API's JSON: parsing and checking completion and chat requests,
// building responses, stream chunks, the model list and error envelopes
// ({"error": {"message", "type", "param", "code"}}).
#ifndef SHARDLM_SERVE_OPENAI_JSON_H_
#define SHARDLM_SERVE_OPENAI_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "serve/chat_template.h"

namespace shardlm::serve {

// A /v1/completions (chat = false) or /v1/chat/completions request.
struct CompletionRequest {
  bool chat = false;
  std::string model;                  // "" when absent
  std::string prompt;                 // completions
  std::vector<ChatMessage> messages;  // chat
  std::optional<int64_t> max_tokens;  // absent: the endpoint's default
  double temperature = 1.0;
  double top_p = 1.0;
  int top_k = 40;                     // an extension (llama.cpp's); 0: no cut
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;     // an extension (llama.cpp's): generate past end-of-text
};

// Parses and checks `body`. InvalidArgument (HTTP 400) names the field for
// malformed JSON, missing fields and values out of range.
absl::StatusOr<CompletionRequest> ParseCompletionRequest(absl::string_view body, bool chat);

// Token counts of a finished request.
struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// The fields every response and chunk of one request shares.
struct ResponseMeta {
  std::string id;  // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  bool chat = false;
};

// The whole (non-streamed) response: text, finish_reason and usage.
std::string CompletionJson(const ResponseMeta& meta, absl::string_view text,
                           absl::string_view finish_reason, const Usage& usage);

// One streamed chunk carrying `text`; `finish_reason` null while going on.
// Chat chunks carry a delta, whose first one (`first`) names the role.
std::string ChunkJson(const ResponseMeta& meta, absl::string_view text,
                      const char* finish_reason, bool first);

// The extra last chunk of stream_options.include_usage (no choices).
std::string UsageChunkJson(const ResponseMeta& meta, const Usage& usage);

// GET /v1/models: the one model this server runs.
std::string ModelsJson(absl::string_view model, int64_t created);

// The HTTP status for an error: 400 InvalidArgument/OutOfRange, 404
// NotFound, 413 ResourceExhausted, 503 Unavailable/FailedPrecondition,
// 500 otherwise.
int HttpStatusFor(const absl::Status& status);

// The OpenAI error envelope for an HTTP status and message.
std::string ErrorJson(int http_status, absl::string_view message);

// ErrorJson(HttpStatusFor(status), status.message()).
std::string ErrorJson(const absl::Status& status);

}  // namespace shardlm::serve

#endif  // SHARDLM_SERVE_OPENAI_JSON_H_
