// GGUF (versions 2 and 3) reader: metadata of every value type, tensor infos,
// memory-mapped tensor data. Every read is bounds-checked: a truncated, corrupt
// or hostile file yields one InvalidArgument/DataLoss error naming what is
// wrong and where (byte offset, key or tensor), never a crash or over-read.
#ifndef SHARDLM_CORE_GGUF_H_
#define SHARDLM_CORE_GGUF_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/dtype.h"
#include "core/mapped_file.h"

namespace shardlm {

// GGUF metadata value types (gguf_type).
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// Name of a value type ("uint32", "array").
const char* GgufTypeName(GgufType type);

// One metadata value. Integers keep their exact value (signed in `i`,
// unsigned in `u`), floats in `f`; arrays hold elements of `elem_type`.
struct GgufValue {
  GgufType type = GgufType::kUint8;
  GgufType elem_type = GgufType::kUint8;  // arrays only
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  bool b = false;
  std::string s;
  std::vector<GgufValue> arr;

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
  // Short human-readable rendering (arrays abbreviated after `max_elems`).
  std::string DebugString(size_t max_elems = 6) const;
};

// One tensor: name, GGUF dims (dims[0] is the contiguous, innermost one),
// type, and its bytes inside the mapped file.
struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;
  DType type = DType::kF32;
  uint64_t offset = 0;      // relative to the start of the data section
  uint64_t size_bytes = 0;  // exact size from dims and type
  int64_t num_elements = 0;
  const uint8_t* data = nullptr;  // points into the mapping
};

class GgufImageBuilder;

class GgufFile {
 public:
  // Maps (or with FileMemory::kCopy reads into huge-page memory) and parses
  // `path`. Errors name the path.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path,
                                                        FileMemory memory = FileMemory::kMap);
  // Parses an in-memory image (copied). `source` names it in errors.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBytes(std::string bytes,
                                                             const std::string& source);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }
  // The whole file image (header and data) as parsed.
  absl::Span<const uint8_t> bytes() const { return {base_, size_}; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  // The value under `key`, or nullptr.
  const GgufValue* Find(absl::string_view key) const;
  // Typed lookups: NotFound if absent, InvalidArgument if of the wrong type
  // or out of range for the requested type.
  absl::StatusOr<uint64_t> GetUint(absl::string_view key) const;
  absl::StatusOr<double> GetFloat(absl::string_view key) const;
  absl::StatusOr<std::string> GetString(absl::string_view key) const;
  absl::StatusOr<const GgufValue*> GetArray(absl::string_view key, GgufType elem_type) const;

  // Tensors in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(absl::string_view name) const;

 private:
  friend class GgufImageBuilder;

  GgufFile() = default;
  // Takes ownership of `mapping` (`size` bytes from mmap; munmapped on
  // destruction, on error too) and parses it. `source` names it in errors.
  static absl::StatusOr<std::unique_ptr<GgufFile>> AdoptMapping(void* mapping, uint64_t size,
                                                                const std::string& source);
  absl::Status Parse();

  std::string source_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;  // munmap on destruction when set
  std::string owned_;        // FromBytes storage
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t, std::less<>> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_GGUF_H_
