// Token sampling from logits: greedy, temperature, top-k, nucleus (top-p),
// driven by a seeded PRNG so a (seed, logits sequence) always gives the same
// tokens. Sampling works on a sorted candidate list, so a cluster whose ranks
// each hold a slice of the vocabulary only needs to merge their top-k
// candidates to draw exactly what one node drawing from full logits would.
#ifndef SHARDLM_CORE_SAMPLER_H_
#define SHARDLM_CORE_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace shardlm {

struct SamplerOptions {
  double temperature = 0.8;  // 0: greedy
  double top_p = 0.95;       // 1: no nucleus cut
  uint64_t seed = 42;
  int top_k = 40;            // most likely tokens kept before top-p; 0: no cut
};

// Checks ranges: temperature >= 0 and finite, 0 < top_p <= 1, top_k >= 0.
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

// One token proposed for sampling: its logit and vocabulary id.
struct Candidate {
  float logit = 0;
  int32_t id = 0;
};

// The candidate order: logit descending, lowest id first on ties, NaN last.
bool CandidateBefore(const Candidate& a, const Candidate& b);

// The `k` first candidates (CandidateBefore order) of `logits`, whose entry i
// has id `id_offset + i`; every one when k <= 0 or k >= logits.size().
std::vector<Candidate> TopCandidates(absl::Span<const float> logits, int64_t k,
                                     int32_t id_offset = 0);

// Merges candidate lists (each sorted by CandidateBefore) into the `k` first
// of their union; all of them when k <= 0.
std::vector<Candidate> MergeCandidates(const std::vector<std::vector<Candidate>>& lists,
                                       int64_t k);

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {}

  const SamplerOptions& options() const { return options_; }
  // True when Sample is Argmax (temperature 0): no randomness is drawn.
  bool greedy() const { return options_.temperature == 0.0; }

  // Picks a token id from `logits`. Greedy picks the largest logit, the
  // lowest id on ties. Otherwise keeps the top_k most likely tokens and
  // draws from them with SampleCandidates.
  int32_t Sample(absl::Span<const float> logits);

  // Draws from `candidates` (sorted by CandidateBefore, already cut to
  // top_k, not empty): softmax(logit / T), keep the shortest prefix whose
  // mass reaches top_p, draw from it. Consumes one PRNG number.
  int32_t SampleCandidates(absl::Span<const Candidate> candidates);

 private:
  SamplerOptions options_;
  SplitMix64 rng_;
};

// Index of the largest value, lowest index on ties (NaN never wins).
int32_t Argmax(absl::Span<const float> values);

}  // namespace shardlm

#endif  // SHARDLM_CORE_SAMPLER_H_
