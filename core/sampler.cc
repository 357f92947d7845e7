#include "core/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"

namespace shardlm {

absl::Status ValidateSamplerOptions(const SamplerOptions& o) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--temperature must be a finite number >= 0, got ", o.temperature));
  }
  if (!(o.top_p > 0 && o.top_p <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--top-p must be in (0, 1], got ", o.top_p));
  }
  if (o.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--top-k must be >= 0, got ", o.top_k));
  }
  return absl::OkStatus();
}

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int32_t Argmax(absl::Span<const float> values) {
  int32_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[best] || std::isnan(values[best])) best = static_cast<int32_t>(i);
  }
  return best;
}

bool CandidateBefore(const Candidate& a, const Candidate& b) {
  const bool a_nan = std::isnan(a.logit), b_nan = std::isnan(b.logit);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

std::vector<Candidate> TopCandidates(absl::Span<const float> logits, int64_t k,
                                     int32_t id_offset) {
  std::vector<Candidate> all(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    all[i] = {logits[i], id_offset + static_cast<int32_t>(i)};
  }
  if (k <= 0 || k >= static_cast<int64_t>(all.size())) {
    std::sort(all.begin(), all.end(), CandidateBefore);
    return all;
  }
  std::partial_sort(all.begin(), all.begin() + k, all.end(), CandidateBefore);
  all.resize(k);
  return all;
}

std::vector<Candidate> MergeCandidates(const std::vector<std::vector<Candidate>>& lists,
                                       int64_t k) {
  std::vector<Candidate> merged;
  for (const std::vector<Candidate>& list : lists) {
    merged.insert(merged.end(), list.begin(), list.end());
  }
  std::sort(merged.begin(), merged.end(), CandidateBefore);
  if (k > 0 && k < static_cast<int64_t>(merged.size())) merged.resize(k);
  return merged;
}

int32_t Sampler::Sample(absl::Span<const float> logits) {
  if (greedy() || logits.size() <= 1) return Argmax(logits);
  const std::vector<Candidate> candidates = TopCandidates(logits, options_.top_k);
  return SampleCandidates(candidates);
}

int32_t Sampler::SampleCandidates(absl::Span<const Candidate> candidates) {
  if (candidates.empty()) return 0;
  const double max = candidates[0].logit;  // NaN sorts last, so this is the largest
  std::vector<double> probs(candidates.size());
  double total = 0.0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const float l = candidates[i].logit;
    probs[i] = std::isnan(l) ? 0.0 : std::exp((l - max) / options_.temperature);
    total += probs[i];
  }
  // Nucleus: the shortest prefix whose mass reaches top_p.
  double kept = 0.0;
  size_t n_keep = 0;
  while (n_keep < candidates.size()) {
    kept += probs[n_keep++];
    if (kept >= options_.top_p * total) break;
  }
  const double r = rng_.NextDouble() * kept;
  double acc = 0.0;
  for (size_t k = 0; k < n_keep; ++k) {
    acc += probs[k];
    if (r < acc) return candidates[k].id;
  }
  return candidates[n_keep - 1].id;
}

}  // namespace shardlm
