// The `shardlm` command line: one binary, subcommands.
#include <vector>

#include "tools/backend_flags.h"
#include "tools/cli.h"
#include "tools/cluster_launch.h"
#include "tools/commands.h"
#include "tools/shared_flags.h"

int main(int argc, char** argv) {
  using shardlm::cli::Command;
  const std::vector<Command> commands = {
      {"generate", "[--model PATH] [--prompt TEXT] [--steps N] [--temperature T] ...",
       "Generate text from a prompt (stdout: prompt + generated text).",
       {"tools/generate_command.cc", shardlm::cli::kBackendFlagsFile, shardlm::cli::kModelFlagFile,
        shardlm::cli::kSeedFlagFile, shardlm::cli::kClusterFlagsFile,
        shardlm::cli::kSecretFileFlagFile},
       &shardlm::cli::RunGenerate},
      {"inspect", "PATH", "Print a model's metadata, tensor table and sizes (GGUF file or Hugging Face folder).",
       {"tools/inspect_command.cc"}, &shardlm::cli::RunInspect},
      {"quantize", "IN OUT --type q8_0|q4_0",
       "Convert an f32/f16/bf16 model (GGUF or Hugging Face folder) to q8_0 or q4_0.",
       {"tools/quantize_command.cc", shardlm::cli::kTypeFlagFile}, &shardlm::cli::RunQuantize},
      {"convert", "HF_DIR OUT.gguf [--type q8_0|q4_0]",
       "Convert a Hugging Face model folder (config.json, safetensors, tokenizer.json) to GGUF.",
       {"tools/convert_command.cc", shardlm::cli::kTypeFlagFile}, &shardlm::cli::RunConvert},
      {"make-model", "--preset NAME --out PATH [--type T] [--seed S] [--zeros] | --list",
       "Write a synthetic llama model of a named shape (tiny, llama3-8b, ...).",
       {"tools/make_model_command.cc", shardlm::cli::kTypeFlagFile, shardlm::cli::kSeedFlagFile,
        shardlm::cli::kOutFlagFile},
       &shardlm::cli::RunMakeModel},
      {"bench", "[--model PATH] [--prompt-tokens N] [--decode-tokens N] [--json] ...",
       "Measure prefill/decode speed against this machine's memory bandwidth.",
       {"tools/bench_command.cc", shardlm::cli::kBackendFlagsFile, shardlm::cli::kModelFlagFile,
        shardlm::cli::kClusterFlagsFile, shardlm::cli::kSecretFileFlagFile},
       &shardlm::cli::RunBench},
      {"worker", "[--port P] [--bind ADDR] [--secret-file F] [--model PATH] [--threads N] ...",
       "Serve as a node of TCP clusters (roots run generate --transport tcp --workers ...).",
       {"tools/worker_command.cc", shardlm::cli::kBackendFlagsFile, shardlm::cli::kModelFlagFile,
        shardlm::cli::kSecretFileFlagFile, shardlm::cli::kPortFlagFile},
       &shardlm::cli::RunWorker},
      {"sim", "--scenario FILE [--seed N | --seeds A:B] [--check-determinism] [--trace F] ... | --replay FILE | --calibrate --out FILE",
       "Run a cluster scenario with faults on the deterministic simulator (functional or cost-model mode), replay a recorded run, or calibrate the cost model.",
       {"tools/sim_command.cc", shardlm::cli::kSeedFlagFile, shardlm::cli::kOutFlagFile}, &shardlm::cli::RunSim},
      {"serve", "[--host ADDR] [--port P] [--chat-template T] [model and cluster flags]",
       "Serve an OpenAI-compatible HTTP API (completions, chat, models, health, metrics).",
       {"tools/serve_command.cc", shardlm::cli::kBackendFlagsFile, shardlm::cli::kModelFlagFile,
        shardlm::cli::kSeedFlagFile, shardlm::cli::kClusterFlagsFile,
        shardlm::cli::kSecretFileFlagFile, shardlm::cli::kPortFlagFile},
       &shardlm::cli::RunServe,
       {{"port", "8080"}}},
  };
  return shardlm::cli::Main(argc, argv, commands);
}
