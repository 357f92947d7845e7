#include "core/gguf_image.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace shardlm {

absl::StatusOr<std::unique_ptr<GgufImageBuilder>> GgufImageBuilder::Create(
    absl::Span<const uint8_t> header, uint64_t file_size, const std::string& source) {
  if (header.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": empty GGUF header"));
  }
  if (file_size > kMaxGgufImageSize) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": file size ", file_size,
                                                   " exceeds the sparse image limit of ",
                                                   kMaxGgufImageSize, " bytes"));
  }
  if (header.size() > file_size) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": GGUF header of ", header.size(),
                                                   " bytes is larger than the file size ",
                                                   file_size));
  }
  void* m = mmap(nullptr, file_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat(
        source, ": cannot reserve ", file_size, " bytes for a sparse image: ", strerror(errno)));
  }
  // Weights are streamed from this memory on every token: huge pages cut
  // the TLB misses (a hint; ignored without transparent huge pages).
  madvise(m, file_size, MADV_HUGEPAGE);
  std::memcpy(m, header.data(), header.size());
  std::unique_ptr<GgufImageBuilder> b(new GgufImageBuilder());
  b->source_ = source;
  b->image_ = static_cast<uint8_t*>(m);
  b->size_ = file_size;
  // Adopted even on error, so the mapping is released either way.
  ASSIGN_OR_RETURN(b->file_, GgufFile::AdoptMapping(m, file_size, source));
  b->data_offset_ = b->file_->data_offset();
  if (b->data_offset_ > header.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": GGUF header of ", header.size(), " bytes is truncated: its data section ",
        "starts at offset ", b->data_offset_));
  }
  return b;
}

absl::Status GgufImageBuilder::Write(uint64_t offset, absl::Span<const uint8_t> bytes) {
  if (image_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(source_, ": write to a sparse image after Finish"));
  }
  if (offset > size_ || bytes.size() > size_ - offset) {
    return absl::OutOfRangeError(absl::StrCat(source_, ": write of ", bytes.size(),
                                              " bytes at offset ", offset,
                                              " runs past the end of the ", size_,
                                              "-byte file"));
  }
  if (bytes.empty()) return absl::OkStatus();
  if (offset < data_offset_) {
    const uint64_t n = std::min<uint64_t>(bytes.size(), data_offset_ - offset);
    if (std::memcmp(image_ + offset, bytes.data(), n) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": write at offset ", offset, " would change the GGUF header [0, ",
                       data_offset_, ")"));
    }
  }
  std::memcpy(image_ + offset, bytes.data(), bytes.size());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufImageBuilder::Finish() {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(source_, ": sparse image already finished or shared"));
  }
  image_ = nullptr;
  return std::move(file_);
}

absl::StatusOr<std::shared_ptr<const GgufFile>> GgufImageBuilder::Share() {
  if (shared_ == nullptr) {
    if (file_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(source_, ": sparse image already finished"));
    }
    shared_ = std::move(file_);
  }
  return shared_;
}

void GgufImageBuilder::Release(uint64_t offset, uint64_t size) {
  if (image_ == nullptr || offset >= size_) return;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t end = std::min(size_, offset + size);
  const uint64_t begin = (std::max(offset, data_offset_) + page - 1) / page * page;
  const uint64_t last = end / page * page;
  if (begin >= last) return;
  madvise(image_ + begin, last - begin, MADV_DONTNEED);
}

}  // namespace shardlm
