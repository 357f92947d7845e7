// Helpers shared by tests: locating the real models, temporary files, small
// synthetic models and in-process clusters.
#ifndef SHARDLM_TESTS_TEST_UTIL_H_
#define SHARDLM_TESTS_TEST_UTIL_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/dtype.h"
#include "core/synthetic_model.h"
#include "core/transport.h"

namespace shardlm::testing {

// Backend options of the tests' reference runs: exact numerics, 1 thread.
BackendOptions ExactOneThread();

// Path of a file or folder under ../shared/models (e.g. "stories260K.gguf",
// "TinyStories-656K") as seen from a Bazel test, or "" when it is absent.
std::string ModelPath(const std::string& name);

// A fresh path under the test's temporary directory.
std::string TempPath(const std::string& name);

// Writes `bytes` to a fresh temporary file and returns its path.
std::string WriteTempFile(const std::string& name, const std::string& bytes);

// The small synthetic llama of the tensor-parallel tests, with 2-D weights
// of `type`: dim 256, ffn 512, 2 layers, 8 query heads over 4 KV heads,
// vocabulary 300, context 64, seed 5. Any node count up to 8 can shard it.
SyntheticModelSpec SmallShardedModelSpec(DType type);

// Writes the model of `spec` to a fresh temporary file named after `name`
// and returns its path.
absl::StatusOr<std::string> WriteSyntheticModelFile(const SyntheticModelSpec& spec,
                                                    const std::string& name);

// Runs `body` for ranks 0..world-1 of a fresh LocalHub (deadlines read on
// `clock`; nullptr: real time), each on its own thread with its own
// endpoint. A rank that fails shuts the hub down so that the others fail
// promptly. Returns the first failing rank's error as "rank R: ...", or OK.
absl::Status RunLocalRanks(int world, const std::function<absl::Status(Transport*)>& body,
                           Clock* clock = nullptr);

}  // namespace shardlm::testing

#endif  // SHARDLM_TESTS_TEST_UTIL_H_
