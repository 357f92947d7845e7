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

// What Generate drives: a model holding a sequence that it extends and then
// picks the next token for. Engine is one (see the overload below); a cluster
// root is another (core/cluster_session.h).
class TokenStepper {
 public:
  virtual ~TokenStepper() = default;
  // Tokens already in the sequence.
  virtual int64_t position() const = 0;
  // The most tokens the sequence can hold.
  virtual int64_t max_seq_len() const = 0;
  // Appends `tokens` to the sequence and returns the next token, drawn with
  // `sampler` from the logits of the last one.
  virtual absl::StatusOr<int32_t> Step(absl::Span<const int32_t> tokens, Sampler* sampler) = 0;
};

// Runs `prompt` through `model` from its current position, then generates as
// the Engine overload below describes.
absl::StatusOr<GenerationStats> Generate(TokenStepper* model, Sampler* sampler,
                                         absl::Span<const int32_t> prompt, int64_t steps,
                                         int32_t eos_id, Clock* clock,
                                         const std::function<absl::Status(int32_t)>& on_token);

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
