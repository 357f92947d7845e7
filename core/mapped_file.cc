#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace shardlm {

namespace {

// Private anonymous memory holding the whole file, read-only afterwards.
absl::StatusOr<void*> CopyIntoMemory(int fd, uint64_t size, const std::string& path) {
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (m == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": cannot reserve ", size, " bytes to load the file: ", strerror(errno)));
  }
  madvise(m, size, MADV_HUGEPAGE);  // a hint: without THP the copy still works
  uint64_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, static_cast<char*>(m) + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? strerror(errno) : "the file shrank while it was read";
      munmap(m, size);
      return absl::DataLossError(absl::StrCat(path, ": read failed at byte ", done, ": ", why));
    }
    done += static_cast<uint64_t>(n);
  }
  mprotect(m, size, PROT_READ);
  return m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path,
                                                             const std::string& what,
                                                             FileMemory memory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open ", what, ": ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::unique_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ > 0 && memory == FileMemory::kCopy) {
    absl::StatusOr<void*> m = CopyIntoMemory(fd, file->size_, path);
    ::close(fd);
    if (!m.ok()) return m.status();
    file->mapping_ = *m;
    file->base_ = static_cast<const uint8_t*>(*m);
    return file;
  }
  if (file->size_ > 0) {
    void* m = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat(path, ": mmap failed: ", strerror(err)));
    }
    file->mapping_ = m;
    file->base_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (mapping_ != nullptr) munmap(mapping_, size_);
}

void* MappedFile::Release() {
  void* m = mapping_;
  mapping_ = nullptr;
  return m;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, const std::string& what) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path, what);
  if (!file.ok()) return file.status();
  const absl::Span<const uint8_t> bytes = (*file)->bytes();
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace shardlm
