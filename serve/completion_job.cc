#include "serve/completion_job.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace shardlm::serve {

absl::StatusOr<GenerationJob> MakeGenerationJob(const CompletionRequest& request,
                                                const Tokenizer& tokenizer,
                                                const JobSettings& settings, uint64_t number) {
  if (!request.model.empty() && request.model != settings.model_name) {
    return absl::NotFoundError(absl::StrCat("the model '", request.model,
                                            "' does not exist (this server runs '",
                                            settings.model_name, "')"));
  }
  GenerationJob job;
  if (request.chat) {
    job.prompt = EncodeWithSpecials(
        tokenizer, ApplyChatTemplate(settings.chat_template, request.messages));
    job.stop = ChatStopStrings(settings.chat_template);
  } else {
    job.prompt = tokenizer.Encode(request.prompt, tokenizer.add_bos_token() || request.prompt.empty());
  }
  const int64_t prompt_tokens = static_cast<int64_t>(job.prompt.size());
  if (prompt_tokens >= settings.max_seq_len) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt is ", prompt_tokens,
                                                   " tokens; the context holds ",
                                                   settings.max_seq_len));
  }
  job.ignore_eos = request.ignore_eos;
  job.stop.insert(job.stop.end(), request.stop.begin(), request.stop.end());
  const int64_t room = settings.max_seq_len - prompt_tokens;
  const int64_t fallback = request.chat ? room : settings.default_completion_tokens;
  job.max_tokens = std::min(request.max_tokens.value_or(fallback), room);
  job.sampling.temperature = request.temperature;
  job.sampling.top_p = request.top_p;
  job.sampling.top_k = request.top_k;
  job.sampling.seed = request.seed.value_or(settings.base_seed + number);
  RETURN_IF_ERROR(ValidateSamplerOptions(job.sampling));
  return job;
}

}  // namespace shardlm::serve
