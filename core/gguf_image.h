// A sparse image of a GGUF file, rebuilt from its header and some of its byte
// ranges (a worker receiving only its weight slices from the root). The
// image spans the whole file size in anonymous memory reserved without
// commitment, so bytes never written cost no memory and read as zero.
#ifndef SHARDLM_CORE_GGUF_IMAGE_H_
#define SHARDLM_CORE_GGUF_IMAGE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/gguf.h"

namespace shardlm {

// Largest file size a sparse image may have (1 TiB).
inline constexpr uint64_t kMaxGgufImageSize = uint64_t{1} << 40;

class GgufImageBuilder {
 public:
  // Reserves `file_size` zero bytes (mmap MAP_NORESERVE), copies `header`
  // (the file's bytes [0, data_offset)) to the start and parses it.
  // InvalidArgument naming `source` when the header is empty, larger than
  // `file_size`, not a GGUF header, shorter than the header it describes,
  // or describes tensors outside `file_size`, or when `file_size` exceeds
  // kMaxGgufImageSize; ResourceExhausted when the memory cannot be reserved.
  static absl::StatusOr<std::unique_ptr<GgufImageBuilder>> Create(
      absl::Span<const uint8_t> header, uint64_t file_size, const std::string& source);

  ~GgufImageBuilder() = default;
  GgufImageBuilder(const GgufImageBuilder&) = delete;
  GgufImageBuilder& operator=(const GgufImageBuilder&) = delete;

  // Copies `bytes` to file offset `offset`. OutOfRange when they run past the
  // end of the file; InvalidArgument when they would change the header
  // (rewriting it with the same bytes is fine); FailedPrecondition after
  // Finish. Not thread-safe.
  absl::Status Write(uint64_t offset, absl::Span<const uint8_t> bytes);

  // The image as a GgufFile whose tensor data points into it (unwritten
  // bytes read as zero); the file owns and later unmaps the memory.
  // FailedPrecondition when called twice or after Share.
  absl::StatusOr<std::unique_ptr<GgufFile>> Finish();

  // The image as a GgufFile shared with this builder, which may go on
  // writing (and releasing) bytes that nothing reads at the time: a worker
  // reusing its image in its next session. The same file on every call;
  // the memory lives while either holds it. FailedPrecondition after Finish.
  absl::StatusOr<std::shared_ptr<const GgufFile>> Share();

  // Returns the whole pages inside [offset, offset + size) of the data
  // section to the system; they read as zero afterwards. Bytes outside the
  // range are never touched.
  void Release(uint64_t offset, uint64_t size);

  const std::string& source() const { return source_; }
  uint64_t file_size() const { return size_; }
  // Where the data section starts; bytes before it are the fixed header.
  uint64_t data_offset() const { return data_offset_; }

 private:
  GgufImageBuilder() = default;

  std::string source_;
  std::unique_ptr<GgufFile> file_;  // owns the mapping until Finish or Share
  std::shared_ptr<const GgufFile> shared_;  // after Share
  uint8_t* image_ = nullptr;        // the writable mapping
  uint64_t size_ = 0;
  uint64_t data_offset_ = 0;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_GGUF_IMAGE_H_
