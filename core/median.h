// The median of a handful of timings (benchmarks and calibration repeat a
// measurement on a shared, drifting host and keep the middle one).
#ifndef SHARDLM_CORE_MEDIAN_H_
#define SHARDLM_CORE_MEDIAN_H_

#include <algorithm>
#include <vector>

namespace shardlm {

// The median of `v`, which must not be empty: the middle value of an odd
// count, the mean of the middle two of an even one.
inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 == 1 ? v[h] : (v[h - 1] + v[h]) / 2;
}

}  // namespace shardlm

#endif  // SHARDLM_CORE_MEDIAN_H_
