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

class MappedFile {
 public:
  // Maps `path`. NotFound when it cannot be opened, InvalidArgument when it
  // is not a regular file; `what` names the file's role in the message
  // ("model file", "safetensors file").
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path,
                                                          const std::string& what);
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
