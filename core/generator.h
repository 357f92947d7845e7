// The generation loop: prefill the prompt, then sample token after token
// until the step budget, the end-of-generation token or the context end.
#ifndef SHARDLM_CORE_GENERATOR_H_
#define SHARDLM_CORE_GENERATOR_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/clock.h"
#include "core/engine.h"
#include "core/sampler.h"

namespace shardlm {

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // the end-of-generation token excluded
  absl::Duration prefill_time;
  absl::Duration decode_time;
  bool stopped_at_eos = false;
  bool context_full = false;  // stopped early because the KV cache is full

  double prefill_tokens_per_second() const;
  double decode_tokens_per_second() const;
};

// Runs `prompt` (already tokenized, BOS included) through `engine` from its
// current position, then samples up to `steps` tokens, handing each to
// `on_token` as soon as it is chosen (a non-OK status from it stops the loop
// and is returned). Stops early at `eos_id` (not passed on) or when the
// context is full. Timings come from `clock`.
absl::StatusOr<GenerationStats> Generate(Engine* engine, Sampler* sampler,
                                         absl::Span<const int32_t> prompt, int64_t steps,
                                         int32_t eos_id, Clock* clock,
                                         const std::function<absl::Status(int32_t)>& on_token);

}  // namespace shardlm

#endif  // SHARDLM_CORE_GENERATOR_H_
