// A read-only memory mapping of a whole regular file (model files:
// GGUF, safetensors). Pages are read from disk on first touch.
#ifndef SHARDLM_CORE_MAPPED_FILE_H_
#define SHARDLM_CORE_MAPPED_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace shardlm {

// How a file's bytes reach memory.
enum class FileMemory {
  // Mapped from the page cache (4 KiB pages): instant, shared, no copy.
  kMap,
  // Read into private anonymous memory asking for transparent huge pages:
  // one read of the file at open, then far fewer TLB misses when the bytes
  // are streamed again and again (decoding reads every weight per token).
  kCopy,
};

class MappedFile {
 public:
  // Maps (or, with kCopy, reads) `path`. NotFound when it cannot be opened,
  // InvalidArgument when it is not a regular file, DataLoss when a read
  // fails or the file shrinks meanwhile; `what` names the file's role in the
  // message ("model file", "safetensors file").
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path,
                                                          const std::string& what,
                                                          FileMemory memory = FileMemory::kMap);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  absl::Span<const uint8_t> bytes() const { return {base_, size_}; }
  uint64_t size() const { return size_; }

  // Hands the mapping (of size()) to the caller, who must munmap it; this
  // object then owns nothing. Null for an empty file.
  void* Release();

 private:
  MappedFile() = default;
  std::string path_;
  void* mapping_ = nullptr;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
};

// The whole contents of the regular file at `path` (errors as Open's).
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, const std::string& what);

}  // namespace shardlm

#endif  // SHARDLM_CORE_MAPPED_FILE_H_
