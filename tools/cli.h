// Shared plumbing of the `shardlm` command line: subcommand table, flag
// scoping and help, the default model, one-line errors.
#ifndef SHARDLM_TOOLS_CLI_H_
#define SHARDLM_TOOLS_CLI_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shardlm::cli {

// A subcommand: its name, argument synopsis, one-line summary, the source
// files whose gflags belong to it, and its body (positional args only).
struct Command {
  const char* name;
  const char* synopsis;
  const char* summary;
  std::vector<std::string> flag_files;
  int (*run)(const std::vector<std::string>& args);
  // Defaults this command gives shared flags (name, value), e.g. --port.
  std::vector<std::pair<std::string, std::string>> flag_defaults = {};
};

// Prints "shardlm <cmd>: error: <message>" as one line on stderr; returns 1.
int Fail(const std::string& command, const absl::Status& status);

// Resolves --model: the flag when set, else ../shared/models/stories260K.gguf
// relative to the project root (BUILD_WORKSPACE_DIRECTORY under `bazel run`,
// else the current directory). NotFound explains how to pass --model.
absl::StatusOr<std::string> ResolveModelPath(const std::string& flag_value);

// Entry point: dispatches argv[1] to `commands`.
int Main(int argc, char** argv, const std::vector<Command>& commands);

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_CLI_H_
