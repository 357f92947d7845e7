#include "core/generator.h"

#include "core/status_macros.h"

namespace shardlm {
namespace {

double Rate(int64_t n, absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  return s > 0 ? n / s : 0.0;
}

// A single-node Engine as a TokenStepper: samples from the full logits.
class EngineStepper : public TokenStepper {
 public:
  explicit EngineStepper(Engine* engine) : engine_(engine) {}
  int64_t position() const override { return engine_->position(); }
  int64_t max_seq_len() const override { return engine_->max_seq_len(); }
  absl::StatusOr<int32_t> Step(absl::Span<const int32_t> tokens, Sampler* sampler) override {
    ASSIGN_OR_RETURN(const std::vector<float> logits, engine_->Forward(tokens));
    return sampler->Sample(logits);
  }

 private:
  Engine* engine_;
};

}  // namespace

double GenerationStats::prefill_tokens_per_second() const {
  return Rate(prompt_tokens, prefill_time);
}

double GenerationStats::decode_tokens_per_second() const {
  return Rate(generated_tokens, decode_time);
}

absl::StatusOr<GenerationStats> Generate(TokenStepper* model, Sampler* sampler,
                                         absl::Span<const int32_t> prompt, int64_t steps,
                                         int32_t eos_id, Clock* clock,
                                         const std::function<absl::Status(int32_t)>& on_token) {
  GenerationStats stats;
  stats.prompt_tokens = prompt.size();
  if (prompt.empty()) return absl::InvalidArgumentError("empty prompt (BOS expected)");
  if (model->position() + static_cast<int64_t>(prompt.size()) > model->max_seq_len()) {
    return absl::OutOfRangeError("prompt longer than the context");
  }
  if (steps <= 0) return stats;

  absl::Time start = clock->Now();
  ASSIGN_OR_RETURN(int32_t token, model->Step(prompt, sampler));
  stats.prefill_time = clock->Now() - start;

  start = clock->Now();
  for (int64_t step = 0; step < steps; ++step) {
    if (token == eos_id) {
      stats.stopped_at_eos = true;
      break;
    }
    ++stats.generated_tokens;
    RETURN_IF_ERROR(on_token(token));
    if (step + 1 == steps) break;
    if (model->position() >= model->max_seq_len()) {
      stats.context_full = true;
      break;
    }
    const int32_t one[1] = {token};
    ASSIGN_OR_RETURN(token, model->Step(one, sampler));
  }
  stats.decode_time = clock->Now() - start;
  return stats;
}

absl::StatusOr<GenerationStats> Generate(Engine* engine, Sampler* sampler,
                                         absl::Span<const int32_t> prompt, int64_t steps,
                                         int32_t eos_id, Clock* clock,
                                         const std::function<absl::Status(int32_t)>& on_token) {
  EngineStepper stepper(engine);
  return Generate(&stepper, sampler, prompt, steps, eos_id, clock, on_token);
}

}  // namespace shardlm
