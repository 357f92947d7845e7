// From a parsed OpenAI request to the job the model thread runs: the model
// name checked, the prompt rendered (chat template) and tokenized and
// checked against the context, sampling options and stop strings set.
#ifndef SHARDLM_SERVE_COMPLETION_JOB_H_
#define SHARDLM_SERVE_COMPLETION_JOB_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/tokenizer.h"
#include "serve/chat_template.h"
#include "serve/openai_json.h"
#include "serve/request_queue.h"

namespace shardlm::serve {

// What the server fixes for every request.
struct JobSettings {
  std::string model_name;  // the id clients name in "model"
  ChatTemplateKind chat_template = ChatTemplateKind::kPlain;
  int64_t max_seq_len = 0;              // the model's context
  uint64_t base_seed = 42;              // seed of a request without one: base + number
  int64_t default_completion_tokens = 16;  // /v1/completions without max_tokens
};

// The job for `request`, the `number`-th the server took. NotFound for
// another model; InvalidArgument when the prompt does not fit the context.
// Chat prompts go through the chat template (special tokens recognised) and
// stop at its end-of-turn strings too; completion prompts are plain text
// after BOS. max_tokens defaults to the rest of the context for chat.
absl::StatusOr<GenerationJob> MakeGenerationJob(const CompletionRequest& request,
                                                const Tokenizer& tokenizer,
                                                const JobSettings& settings, uint64_t number);

}  // namespace shardlm::serve

#endif  // SHARDLM_SERVE_COMPLETION_JOB_H_
