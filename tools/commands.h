// The subcommands of `shardlm`; each returns the process exit code.
#ifndef SHARDLM_TOOLS_COMMANDS_H_
#define SHARDLM_TOOLS_COMMANDS_H_

#include <string>
#include <vector>

#include "tools/cli.h"

namespace shardlm::cli {

// generate: text from a prompt (tools/generate_command.cc).
int RunGenerate(const std::vector<std::string>& args);
// inspect PATH: metadata, tensors, sizes (tools/inspect_command.cc).
int RunInspect(const std::vector<std::string>& args);

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_COMMANDS_H_
