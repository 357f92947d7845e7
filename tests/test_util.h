// Helpers shared by tests: locating the real models, temporary files.
#ifndef SHARDLM_TESTS_TEST_UTIL_H_
#define SHARDLM_TESTS_TEST_UTIL_H_

#include <string>

namespace shardlm::testing {

// Path of a file under ../shared/models (e.g. "stories260K.gguf") as seen
// from a Bazel test, or "" when it is absent (tests then GTEST_SKIP).
std::string ModelPath(const std::string& name);

// A fresh path under the test's temporary directory.
std::string TempPath(const std::string& name);

// Writes `bytes` to a fresh temporary file and returns its path.
std::string WriteTempFile(const std::string& name, const std::string& bytes);

}  // namespace shardlm::testing

#endif  // SHARDLM_TESTS_TEST_UTIL_H_
