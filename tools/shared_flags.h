// Flags that several commands share. gflags names are global and a command
// accepts only flags from its Command::flag_files, so each shared flag lives
// in a file of its own that the commands using it list.
#ifndef SHARDLM_TOOLS_SHARED_FLAGS_H_
#define SHARDLM_TOOLS_SHARED_FLAGS_H_

#include <cstdint>
#include <string>

#include "core/mapped_file.h"

namespace shardlm::cli {

// --type (quantize, make-model).
inline constexpr char kTypeFlagFile[] = "tools/type_flag.cc";
// --model (generate, bench, and later worker, serve).
inline constexpr char kModelFlagFile[] = "tools/model_flag.cc";
// --seed (generate: sampling; make-model: weights).
inline constexpr char kSeedFlagFile[] = "tools/seed_flag.cc";

// --port (worker: 9090, serve: 8080, through Command::flag_defaults).
inline constexpr char kPortFlagFile[] = "tools/port_flag.cc";
// --out (make-model: the GGUF file; sim --calibrate: the cost model).
inline constexpr char kOutFlagFile[] = "tools/out_flag.cc";

// --secret-file (generate, bench and worker over tcp).
inline constexpr char kSecretFileFlagFile[] = "tools/secret_flag.cc";

// The --secret-file value ("" when absent: no authentication).
std::string SecretFileFlag();
// The --type value as given ("" when absent).
std::string TypeFlag();
// The --model value as given ("" when absent: the default model).
std::string ModelFlag();
// How --model's GGUF file is loaded: --mmap maps it, the default reads it
// into huge-page memory.
FileMemory ModelMemoryFlag();
// The --port value.
int PortFlag();
// The --seed value.
uint64_t SeedFlag();
// The --out value ("" when absent).
std::string OutFlag();

}  // namespace shardlm::cli

#endif  // SHARDLM_TOOLS_SHARED_FLAGS_H_
