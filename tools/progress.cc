#include "tools/progress.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace shardlm::cli {
namespace {

constexpr absl::Duration kRedrawInterval = absl::Milliseconds(100);

}  // namespace

void ProgressLine::Update(uint64_t done, uint64_t total) {
  const int permille =
      total == 0 ? 1000 : static_cast<int>(std::min<uint64_t>(done, total) * 1000 / total);
  if (permille == last_permille_) return;
  const absl::Time now = absl::Now();
  if (permille < 1000 && now - last_draw_ < kRedrawInterval) return;
  last_permille_ = permille;
  last_draw_ = now;
  const std::string line = absl::StrFormat("%s: %5.1f%% (%s of %s)", label_, permille / 10.0,
                                           HumanBytes(done), HumanBytes(total));
  const size_t pad = width_ > line.size() ? width_ - line.size() : 0;
  std::fprintf(stderr, "\r%s%s", line.c_str(), std::string(pad, ' ').c_str());
  std::fflush(stderr);
  width_ = std::max(width_, line.size());
}

void ProgressLine::Finish(const std::string& summary) {
  const size_t pad = width_ > summary.size() ? width_ - summary.size() : 0;
  std::fprintf(stderr, "%s%s%s\n", width_ > 0 ? "\r" : "", summary.c_str(),
               std::string(pad, ' ').c_str());
  width_ = 0;
}

void ProgressLine::Clear() {
  if (width_ == 0) return;
  std::fprintf(stderr, "\r%s\r", std::string(width_, ' ').c_str());
  width_ = 0;
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrFormat("%d B", bytes);
  return absl::StrFormat(v < 10 ? "%.2f %s" : "%.1f %s", v, units[u]);
}

}  // namespace shardlm::cli
