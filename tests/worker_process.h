// A `shardlm worker` child process for tests: started with --port 0, its
// port read from its log, killed and reaped on destruction.
#ifndef SHARDLM_TESTS_WORKER_PROCESS_H_
#define SHARDLM_TESTS_WORKER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shardlm::testing {

class WorkerProcess {
 public:
  // Runs `shardlm worker --port 0 --bind 127.0.0.1 <extra_args>` (the binary
  // from the test's runfiles) and waits until it listens.
  static absl::StatusOr<std::unique_ptr<WorkerProcess>> Start(
      const std::vector<std::string>& extra_args);
  ~WorkerProcess();

  int port() const { return port_; }
  std::string address() const;
  // Everything the worker has written to stderr so far.
  std::string Log() const;
  // SIGKILLs the worker now and reaps it.
  void Kill();

 private:
  WorkerProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  int port_ = 0;
};

// Path of the shardlm binary in the test's runfiles.
std::string ShardlmBinary();

}  // namespace shardlm::testing

#endif  // SHARDLM_TESTS_WORKER_PROCESS_H_
