// The `shardlm` command line: one binary, subcommands.
#include "tools/cli.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  using shardlm::cli::Command;
  const std::vector<Command> commands = {
      {"generate", "[--model PATH] [--prompt TEXT] [--steps N] [--temperature T] ...",
       "Generate text from a prompt (stdout: prompt + generated text).",
       {"tools/generate_command.cc"}, &shardlm::cli::RunGenerate},
      {"inspect", "PATH", "Print a GGUF file's metadata, tensor table and sizes.",
       {"tools/inspect_command.cc"}, &shardlm::cli::RunInspect},
  };
  return shardlm::cli::Main(argc, argv, commands);
}
