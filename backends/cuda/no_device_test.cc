// `CreateBackend("cuda")` on a machine without a usable GPU (or in a build
// without CUDA) fails with one clear line, never a crash.
#include <string>

#include "core/backend.h"
#include "gtest/gtest.h"

namespace shardlm {
namespace {

TEST(NoDeviceTest, CreateFailsCleanly) {
  auto backend = CreateBackend("cuda", BackendOptions{});
  if (backend.ok()) GTEST_SKIP() << "a GPU is present: " << (*backend)->Describe();
  const std::string msg(backend.status().message());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
#if SHARDLM_CUDA_BUILD
  // This machine kind: "CUDA driver version is insufficient ..." or no GPU.
  EXPECT_EQ(msg.rfind("cuda backend: no usable CUDA device: ", 0), 0u) << msg;
#else
  EXPECT_EQ(msg, "this build has no CUDA backend; rebuild with --config=cuda");
#endif
}

TEST(NoDeviceTest, BadOrdinalOrNoDevice) {
  BackendOptions options;
  options.device = 99;
  auto backend = CreateBackend("cuda", options);
  ASSERT_FALSE(backend.ok());
  const absl::StatusCode code = backend.status().code();
  EXPECT_TRUE(code == absl::StatusCode::kFailedPrecondition ||
              code == absl::StatusCode::kInvalidArgument)
      << backend.status();
}

}  // namespace
}  // namespace shardlm
