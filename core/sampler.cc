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

int32_t Sampler::Sample(absl::Span<const float> logits) {
  if (options_.temperature == 0.0 || logits.size() <= 1) return Argmax(logits);
  const double max = logits[Argmax(logits)];
  std::vector<double> probs(logits.size());
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double p = std::isnan(logits[i]) ? 0.0 : std::exp((logits[i] - max) / options_.temperature);
    probs[i] = p;
    total += p;
  }
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
  // Nucleus: the shortest prefix whose mass reaches top_p.
  double kept = 0.0;
  size_t n_keep = 0;
  while (n_keep < order.size()) {
    kept += probs[order[n_keep++]];
    if (kept >= options_.top_p * total) break;
  }
  const double r = rng_.NextDouble() * kept;
  double acc = 0.0;
  for (size_t k = 0; k < n_keep; ++k) {
    acc += probs[order[k]];
    if (r < acc) return order[k];
  }
  return order[n_keep - 1];
}

}  // namespace shardlm
