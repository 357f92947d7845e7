// Reader for Hugging Face safetensors files: an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range,
// then the tensor bytes. The file is memory-mapped; the header is validated
// strictly (every range inside the data section, sizes matching dtype and
// shape, no overlaps and no holes) before any tensor is handed out.
#ifndef SHARDLM_CORE_SAFETENSORS_H_
#define SHARDLM_CORE_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/mapped_file.h"

namespace shardlm {

// Largest JSON header accepted (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeader = 100 << 20;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as written: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;  // outermost first (row-major)
  uint64_t offset = 0;         // within the data section
  uint64_t size = 0;           // bytes
  const uint8_t* data = nullptr;

  int64_t num_elements() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. Errors start with the path and say what is
  // wrong (which tensor, which field).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Validates an in-memory image (copied); `source` names it in errors.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBytes(std::string bytes,
                                                                    const std::string& source);

  const std::string& source() const { return source_; }
  // Tensors in data order.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(absl::string_view name) const;
  // The optional "__metadata__" string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  absl::Status Parse(absl::Span<const uint8_t> bytes);

  std::string source_;
  std::unique_ptr<MappedFile> mapped_;
  std::string owned_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// Bytes per element of a safetensors dtype name, or 0 when unknown.
int SafetensorsDTypeSize(absl::string_view dtype);

// Encodes a safetensors file (tests and tools that write them): tensors in
// the given order, each {name, dtype, shape, bytes}.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
std::string EncodeSafetensors(const std::vector<SafetensorsEntry>& entries,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace shardlm

#endif  // SHARDLM_CORE_SAFETENSORS_H_
