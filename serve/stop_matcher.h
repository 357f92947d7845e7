// Cuts generated text at the first `stop` string without ever letting a
// partial match out: text that could still be the start of a stop string is
// held back until the next piece settles it.
#ifndef SHARDLM_SERVE_STOP_MATCHER_H_
#define SHARDLM_SERVE_STOP_MATCHER_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace shardlm::serve {

// Feed pieces of text in order; emit what Push and Flush return.
class StopMatcher {
 public:
  // Empty strings in `stops` are ignored.
  explicit StopMatcher(std::vector<std::string> stops);

  // Text that is now safe to emit. Once a stop string appears, returns the
  // text before it and stopped() becomes true; later pushes return "".
  std::string Push(absl::string_view piece);
  // The held-back tail at the end of generation ("" once stopped).
  std::string Flush();
  // True once a stop string was found.
  bool stopped() const { return stopped_; }

 private:
  // Length of the longest suffix of held_ that is a proper prefix of a stop.
  size_t PartialMatchLength() const;

  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace shardlm::serve

#endif  // SHARDLM_SERVE_STOP_MATCHER_H_
