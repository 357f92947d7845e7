// Token sampling from logits: greedy, temperature, nucleus (top-p), driven by
// a seeded PRNG so a (seed, logits sequence) always gives the same tokens.
#ifndef SHARDLM_CORE_SAMPLER_H_
#define SHARDLM_CORE_SAMPLER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace shardlm {

struct SamplerOptions {
  double temperature = 0.8;  // 0: greedy
  double top_p = 0.95;       // 1: no nucleus cut
  uint64_t seed = 42;
};

// Checks ranges: temperature >= 0 and finite, 0 < top_p <= 1.
absl::Status ValidateSamplerOptions(const SamplerOptions& options);

// SplitMix64: a tiny, portable, seeded generator (same stream everywhere).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform double in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {}

  // Picks a token id from `logits`. Greedy picks the largest logit, the
  // lowest id on ties. Otherwise softmax(logits / T), keep the smallest set
  // of most likely tokens whose mass reaches top_p, draw from it.
  int32_t Sample(absl::Span<const float> logits);

 private:
  SamplerOptions options_;
  SplitMix64 rng_;
};

// Index of the largest value, lowest index on ties (NaN never wins).
int32_t Argmax(absl::Span<const float> values);

}  // namespace shardlm

#endif  // SHARDLM_CORE_SAMPLER_H_
