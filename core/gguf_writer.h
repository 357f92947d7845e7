// Streaming GGUF v3 writer: metadata of every type, tensor infos, aligned data.
// Used by quantize, make-model and the tests' synthetic models.
#ifndef SHARDLM_CORE_GGUF_WRITER_H_
#define SHARDLM_CORE_GGUF_WRITER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "core/gguf.h"

namespace shardlm {

class GgufWriter {
 public:
  // Produces a tensor's bytes in order; called once per tensor during Write,
  // with a sink to append to. The total appended must equal the tensor size.
  using DataSource = std::function<absl::Status(const std::function<void(const void*, size_t)>&)>;

  explicit GgufWriter(uint64_t alignment = 32) : alignment_(alignment) {}

  // Metadata, written in insertion order.
  void AddValue(const std::string& key, GgufValue value);
  void AddString(const std::string& key, const std::string& v);
  void AddUint32(const std::string& key, uint32_t v);
  void AddFloat32(const std::string& key, float v);
  void AddStringArray(const std::string& key, const std::vector<std::string>& v);
  void AddFloat32Array(const std::string& key, const std::vector<float>& v);
  void AddInt32Array(const std::string& key, const std::vector<int32_t>& v);

  // A tensor with GGUF dims (dims[0] contiguous) whose bytes come from `source`.
  absl::Status AddTensor(const std::string& name, std::vector<int64_t> dims, DType type,
                         DataSource source);
  // A tensor from float values, encoded as `type`, row by row of dims[0].
  absl::Status AddTensorFromFloats(const std::string& name, std::vector<int64_t> dims, DType type,
                                   std::vector<float> values);

  // Writes the whole file, streaming tensor data; `progress(done, total)`
  // is called after each tensor when set.
  absl::Status Write(const std::string& path,
                     const std::function<void(uint64_t, uint64_t)>& progress = nullptr) const;
  // The whole file image in memory (tests).
  absl::StatusOr<std::string> Serialize() const;
  // Produces the whole file in order (header first) into `sink`;
  // `progress(done, total)` after each tensor when set.
  absl::Status Stream(const std::function<void(const void*, size_t)>& sink,
                      const std::function<void(uint64_t, uint64_t)>& progress) const;
  // The header (metadata and tensor infos, padded to the alignment): the
  // file's bytes before the data section.
  std::string EncodeHeader() const;
  // Size of the whole file Write would produce.
  uint64_t file_size() const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    DType type;
    uint64_t size;
    uint64_t offset;
    DataSource source;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
  uint64_t data_size_ = 0;
};

// Appends the GGUF encoding of `v` (without type tag) to `out`.
void EncodeGgufValue(const GgufValue& v, std::string* out);

}  // namespace shardlm

#endif  // SHARDLM_CORE_GGUF_WRITER_H_
