// A progress display on stderr for long file writes (quantize, make-model):
// one line rewritten in place with '\r', ended by a summary line.
#ifndef SHARDLM_TOOLS_PROGRESS_H_
#define SHARDLM_TOOLS_PROGRESS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace shardlm::cli {

class ProgressLine {
 public:
  // `label` starts the line ("quantizing model.gguf").
  explicit ProgressLine(std::string label) : label_(std::move(label)) {}

  // Shows `done` of `total` bytes; redraws at most every 100 ms (and at
  // 100%), so it is cheap to call often.
  void Update(uint64_t done, uint64_t total);
  // Replaces the progress line with `summary` and ends the line.
  void Finish(const std::string& summary);
  // Erases the progress line (before an error message).
  void Clear();

 private:
  std::string label_;
  int last_permille_ = -1;
  absl::Time last_draw_ = absl::InfinitePast();
  size_t width_ = 0;  // characters of the line on screen
};

// "12.3 MiB", "4.56 GiB": binary units with two or three significant decimals.
std::string HumanBytes(uint64_t bytes);

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_PROGRESS_H_
