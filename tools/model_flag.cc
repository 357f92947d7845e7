#include "gflags/gflags.h"
#include "tools/shared_flags.h"

DEFINE_string(model, "", "GGUF model file or Hugging Face model folder (default: ../shared/models/stories260K.gguf)");
DEFINE_bool(mmap, false,
            "Map a GGUF model from the page cache instead of reading it into memory with huge "
            "pages (starts faster and shares memory; decoding is slower from 4 KiB pages)");

namespace shardlm::cli {

std::string ModelFlag() { return FLAGS_model; }

FileMemory ModelMemoryFlag() { return FLAGS_mmap ? FileMemory::kMap : FileMemory::kCopy; }

}  // namespace shardlm::cli
