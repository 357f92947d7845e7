#include "core/quantize.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/gguf_writer.h"
#include "core/model_loader.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

constexpr uint64_t kProgressStep = uint64_t{8} << 20;  // report every 8 MiB
constexpr uint64_t kCopyChunk = uint64_t{4} << 20;     // bytes per sink call when copying

// Accumulates written bytes and calls the progress callback in steps.
class ProgressTracker {
 public:
  ProgressTracker(uint64_t total, QuantizeProgress callback)
      : total_(total), callback_(std::move(callback)) {}

  void Add(uint64_t bytes) {
    done_ += bytes;
    if (callback_ && (done_ - reported_ >= kProgressStep || done_ == total_)) {
      reported_ = done_;
      callback_(done_, total_);
    }
  }

 private:
  uint64_t total_;
  QuantizeProgress callback_;
  uint64_t done_ = 0;
  uint64_t reported_ = 0;
};

bool IsFloatType(DType type) {
  return type == DType::kF32 || type == DType::kF16 || type == DType::kBF16;
}

// Streams `t`'s bytes unchanged, straight from the mapping.
GgufWriter::DataSource CopyBytes(const GgufTensorInfo& t, ProgressTracker* tracker) {
  const uint8_t* data = t.data;
  const uint64_t size = t.size_bytes;
  return [data, size, tracker](const std::function<void(const void*, size_t)>& sink) {
    for (uint64_t off = 0; off < size; off += kCopyChunk) {
      const uint64_t n = std::min(kCopyChunk, size - off);
      sink(data + off, n);
      tracker->Add(n);
    }
    return absl::OkStatus();
  };
}

// Streams `t` converted to `dst` one row (dims[0] elements) at a time.
GgufWriter::DataSource ConvertRows(const GgufTensorInfo& t, DType dst, ProgressTracker* tracker) {
  const uint8_t* data = t.data;
  const DType src = t.type;
  const int64_t cols = t.dims[0];
  const int64_t rows = t.num_elements / cols;
  const std::string name = t.name;
  return [=](const std::function<void(const void*, size_t)>& sink) -> absl::Status {
    ASSIGN_OR_RETURN(const uint64_t src_row, RowBytes(src, cols));
    ASSIGN_OR_RETURN(const uint64_t dst_row, RowBytes(dst, cols));
    std::vector<float> values(cols);
    std::string encoded(dst_row, '\0');
    for (int64_t r = 0; r < rows; ++r) {
      absl::Status s = DequantizeRow(src, data + r * src_row, cols, values.data());
      if (s.ok()) s = QuantizeRow(dst, values.data(), cols, encoded.data());
      if (!s.ok()) return absl::InternalError(absl::StrCat("tensor ", name, ": ", s.message()));
      sink(encoded.data(), encoded.size());
      tracker->Add(dst_row);
    }
    return absl::OkStatus();
  };
}

// InvalidArgument when `out` names the same file as `in`.
absl::Status CheckDistinctPaths(const std::string& in, const std::string& out) {
  const absl::Status same = absl::InvalidArgumentError(
      absl::StrCat("output ", out, " is the input file; choose another OUT"));
  if (in == out) return same;
  struct stat a, b;
  if (stat(in.c_str(), &a) == 0 && stat(out.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
      a.st_ino == b.st_ino) {
    return same;
  }
  return absl::OkStatus();
}

absl::Status CheckInputTypes(const GgufFile& file) {
  for (const GgufTensorInfo& t : file.tensors()) {
    if (!IsFloatType(t.type)) {
      return absl::InvalidArgumentError(absl::StrCat(file.source(), ": tensor ", t.name, " is ",
                                                     DTypeName(t.type),
                                                     ": input must be f32/f16/bf16"));
    }
  }
  return absl::OkStatus();
}

// Copies the metadata in order, setting general.file_type (and adding
// general.quantization_version, as llama.cpp does).
void CopyMetadata(const GgufFile& file, DType target, GgufWriter* writer) {
  bool has_file_type = false, has_quant_version = false;
  for (const auto& [key, value] : file.metadata()) {
    if (key == "general.file_type") {
      has_file_type = true;
      writer->AddUint32(key, LlamaFileType(target));
      continue;
    }
    if (key == "general.quantization_version") has_quant_version = true;
    writer->AddValue(key, value);
  }
  if (!has_file_type) writer->AddUint32("general.file_type", LlamaFileType(target));
  if (!has_quant_version) writer->AddUint32("general.quantization_version", 2);
}

// Adds every tensor of `file` with its converted type and data source.
absl::Status AddTensors(const GgufFile& file, DType target, ProgressTracker* tracker,
                        GgufWriter* writer, QuantizeStats* stats) {
  for (const GgufTensorInfo& t : file.tensors()) {
    const DType type = QuantizedTensorType(t, target);
    if (type == target) {
      ++stats->tensors_quantized;
    } else {
      ++stats->tensors_kept;
      if (type != DType::kF32) stats->kept_all_f32 = false;
    }
    GgufWriter::DataSource source = (type == t.type || t.num_elements == 0)
                                        ? CopyBytes(t, tracker)
                                        : ConvertRows(t, type, tracker);
    RETURN_IF_ERROR(writer->AddTensor(t.name, t.dims, type, std::move(source)));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> OutputDataBytes(const GgufFile& file, DType target) {
  uint64_t total = 0;
  for (const GgufTensorInfo& t : file.tensors()) {
    ASSIGN_OR_RETURN(const uint64_t bytes, RowBytes(QuantizedTensorType(t, target), t.num_elements));
    total += bytes;
  }
  return total;
}

absl::Status WriteAndRename(const GgufWriter& writer, const std::string& path) {
  const std::string partial = path + ".partial";
  absl::Status status = writer.Write(partial);
  if (status.ok() && std::rename(partial.c_str(), path.c_str()) != 0) {
    status = absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot rename ", partial, ": ", std::strerror(errno)));
  }
  if (!status.ok()) std::remove(partial.c_str());
  return status;
}

}  // namespace

uint32_t LlamaFileType(DType type) {
  switch (type) {
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ8_0: return 7;
    case DType::kBF16: return 32;
    default: return 0;
  }
}

DType QuantizedTensorType(const GgufTensorInfo& tensor, DType target) {
  if (tensor.dims.size() == 1) return DType::kF32;
  if (tensor.dims.size() == 2 && tensor.dims[0] % Info(target).block_size == 0) return target;
  return tensor.type;
}

absl::StatusOr<QuantizeStats> QuantizeModel(const std::string& in_path,
                                            const std::string& out_path,
                                            const QuantizeOptions& options) {
  if (options.type != DType::kQ8_0 && options.type != DType::kQ4_0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot quantize to ", DTypeName(options.type),
                                                   " (expected q8_0 or q4_0)"));
  }
  RETURN_IF_ERROR(CheckDistinctPaths(in_path, out_path));
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> in, OpenModelFile(in_path));
  RETURN_IF_ERROR(CheckInputTypes(*in));
  ASSIGN_OR_RETURN(const uint64_t total, OutputDataBytes(*in, options.type));

  QuantizeStats stats;
  stats.input_file_bytes = in->file_size();
  ProgressTracker tracker(total, options.progress);
  GgufWriter writer(in->alignment());
  CopyMetadata(*in, options.type, &writer);
  RETURN_IF_ERROR(AddTensors(*in, options.type, &tracker, &writer, &stats));
  RETURN_IF_ERROR(WriteAndRename(writer, out_path));
  struct stat st;
  if (stat(out_path.c_str(), &st) == 0) stats.output_file_bytes = st.st_size;
  return stats;
}

}  // namespace shardlm
