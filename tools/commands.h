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
// quantize IN OUT --type T: f32/f16/bf16 model to q8_0/q4_0 (tools/quantize_command.cc).
int RunQuantize(const std::vector<std::string>& args);
// convert HF_DIR OUT: Hugging Face folder to GGUF (tools/convert_command.cc).
int RunConvert(const std::vector<std::string>& args);
// make-model: synthetic model of a preset shape (tools/make_model_command.cc).
int RunMakeModel(const std::vector<std::string>& args);
// bench: tokens/s against measured memory bandwidth (tools/bench_command.cc).
int RunBench(const std::vector<std::string>& args);
// worker: serve root sessions over TCP (tools/worker_command.cc).
int RunWorker(const std::vector<std::string>& args);
// sim: run a simulation scenario (tools/sim_command.cc).
int RunSim(const std::vector<std::string>& args);
// serve: OpenAI-compatible HTTP API over the model (tools/serve_command.cc).
int RunServe(const std::vector<std::string>& args);

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_COMMANDS_H_
