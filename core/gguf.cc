#include "core/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/mapped_file.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 4;
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxAlignment = 1 << 20;
constexpr uint64_t kMaxKeyLength = 1 << 16;

// Bounds-checked little-endian reader over the file image.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& source)
      : data_(data), size_(size), source_(source) {}

  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  absl::Status Truncated(uint64_t need, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": truncated GGUF file: ", what, " at offset ", pos_, " needs ", need,
        " bytes, only ", remaining(), " remain (file is ", size_, " bytes)"));
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": corrupt GGUF file: ", what, " (at offset ", pos_, ")"));
  }

  template <typename T>
  absl::StatusOr<T> Read(absl::string_view what) {
    if (remaining() < sizeof(T)) return Truncated(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  absl::StatusOr<std::string> ReadString(absl::string_view what, uint64_t max_len) {
    ASSIGN_OR_RETURN(uint64_t len, Read<uint64_t>(what));
    if (len > remaining()) {
      pos_ -= 8;
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": truncated or corrupt GGUF file: ", what, " at offset ", pos_,
          " claims length ", len, " but only ", remaining() - 8, " bytes remain"));
    }
    if (len > max_len) {
      pos_ -= 8;
      return Error(absl::StrCat(what, " has absurd length ", len));
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& source_;
};

// Smallest number of bytes one element of `type` occupies in the file.
uint64_t MinEncodedSize(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kString:  // u64 length
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kArray:  // u32 type + u64 count
      return 12;
  }
  return 1;
}

bool ValidType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

absl::Status ReadValue(Cursor& c, GgufType type, const std::string& key, int depth,
                       GgufValue* out) {
  out->type = type;
  const std::string what = absl::StrCat("value of key '", key, "'");
  switch (type) {
    case GgufType::kUint8: {
      ASSIGN_OR_RETURN(uint8_t v, c.Read<uint8_t>(what));
      out->u = v;
      out->i = v;
      return absl::OkStatus();
    }
    case GgufType::kInt8: {
      ASSIGN_OR_RETURN(int8_t v, c.Read<int8_t>(what));
      out->i = v;
      return absl::OkStatus();
    }
    case GgufType::kUint16: {
      ASSIGN_OR_RETURN(uint16_t v, c.Read<uint16_t>(what));
      out->u = v;
      out->i = v;
      return absl::OkStatus();
    }
    case GgufType::kInt16: {
      ASSIGN_OR_RETURN(int16_t v, c.Read<int16_t>(what));
      out->i = v;
      return absl::OkStatus();
    }
    case GgufType::kUint32: {
      ASSIGN_OR_RETURN(uint32_t v, c.Read<uint32_t>(what));
      out->u = v;
      out->i = v;
      return absl::OkStatus();
    }
    case GgufType::kInt32: {
      ASSIGN_OR_RETURN(int32_t v, c.Read<int32_t>(what));
      out->i = v;
      return absl::OkStatus();
    }
    case GgufType::kUint64: {
      ASSIGN_OR_RETURN(uint64_t v, c.Read<uint64_t>(what));
      out->u = v;
      out->i = static_cast<int64_t>(v);
      return absl::OkStatus();
    }
    case GgufType::kInt64: {
      ASSIGN_OR_RETURN(int64_t v, c.Read<int64_t>(what));
      out->i = v;
      return absl::OkStatus();
    }
    case GgufType::kFloat32: {
      ASSIGN_OR_RETURN(float v, c.Read<float>(what));
      out->f = v;
      return absl::OkStatus();
    }
    case GgufType::kFloat64: {
      ASSIGN_OR_RETURN(double v, c.Read<double>(what));
      out->f = v;
      return absl::OkStatus();
    }
    case GgufType::kBool: {
      ASSIGN_OR_RETURN(uint8_t v, c.Read<uint8_t>(what));
      if (v > 1) return c.Error(absl::StrCat(what, ": bool byte is ", v, ", not 0 or 1"));
      out->b = v != 0;
      return absl::OkStatus();
    }
    case GgufType::kString: {
      ASSIGN_OR_RETURN(out->s, c.ReadString(what, std::numeric_limits<uint64_t>::max()));
      return absl::OkStatus();
    }
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) {
        return c.Error(absl::StrCat(what, ": arrays nested deeper than ", kMaxArrayDepth));
      }
      ASSIGN_OR_RETURN(uint32_t et, c.Read<uint32_t>(what + " array type"));
      if (!ValidType(et)) {
        return c.Error(absl::StrCat(what, ": unknown array element type ", et));
      }
      ASSIGN_OR_RETURN(uint64_t n, c.Read<uint64_t>(what + " array length"));
      out->elem_type = static_cast<GgufType>(et);
      const uint64_t min = MinEncodedSize(out->elem_type);
      if (n > c.remaining() / min) {
        return c.Error(absl::StrCat("truncated or corrupt array: ", what, " claims ", n,
                                    " elements of ", GgufTypeName(out->elem_type),
                                    " but only ", c.remaining(), " bytes remain"));
      }
      out->arr.resize(n);
      for (uint64_t k = 0; k < n; ++k) {
        RETURN_IF_ERROR(ReadValue(c, out->elem_type, key, depth + 1, &out->arr[k]));
      }
      return absl::OkStatus();
    }
  }
  return c.Error(absl::StrCat(what, ": unknown value type ", static_cast<uint32_t>(type)));
}

}  // namespace

const char* GgufTypeName(GgufType type) {
  static const char* const kNames[] = {"uint8",   "int8",  "uint16", "int16", "uint32",
                                       "int32",   "float32", "bool", "string", "array",
                                       "uint64",  "int64", "float64"};
  const uint32_t t = static_cast<uint32_t>(type);
  return t < 13 ? kNames[t] : "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

std::string GgufValue::DebugString(size_t max_elems) const {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
      return absl::StrCat(u);
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64:
      return absl::StrCat(i);
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      return absl::StrCat(f);
    case GgufType::kBool:
      return b ? "true" : "false";
    case GgufType::kString: {
      std::string shown = s.size() > 60 ? s.substr(0, 60) + "..." : s;
      return absl::StrCat("\"", shown, "\"");
    }
    case GgufType::kArray: {
      std::vector<std::string> parts;
      for (size_t k = 0; k < arr.size() && k < max_elems; ++k) {
        parts.push_back(arr[k].DebugString(max_elems));
      }
      if (arr.size() > max_elems) parts.push_back("...");
      return absl::StrCat(GgufTypeName(elem_type), "[", arr.size(), "] [",
                          absl::StrJoin(parts, ", "), "]");
    }
  }
  return "?";
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) munmap(mapping_, size_);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path,
                                                         FileMemory memory) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped,
                   MappedFile::Open(path, "model file", memory));
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->source_ = path;
  file->size_ = mapped->size();
  file->mapping_ = mapped->Release();
  file->base_ = static_cast<const uint8_t*>(file->mapping_);
  RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBytes(std::string bytes,
                                                              const std::string& source) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->source_ = source;
  file->owned_ = std::move(bytes);
  file->base_ = reinterpret_cast<const uint8_t*>(file->owned_.data());
  file->size_ = file->owned_.size();
  RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::AdoptMapping(void* mapping, uint64_t size,
                                                                 const std::string& source) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->source_ = source;
  file->mapping_ = mapping;
  file->size_ = size;
  file->base_ = static_cast<const uint8_t*>(mapping);
  RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::Status GgufFile::Parse() {
  Cursor c(base_, size_, source_);
  if (size_ < 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": not a GGUF file: ", size_, " bytes, too short for the 'GGUF' magic"));
  }
  ASSIGN_OR_RETURN(uint32_t magic, c.Read<uint32_t>("magic"));
  if (magic != kMagic) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": not a GGUF file: bad magic (first bytes are not 'GGUF')"));
  }
  ASSIGN_OR_RETURN(version_, c.Read<uint32_t>("version"));
  if (version_ == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": GGUF version 1 is not supported (only 2 and 3)"));
  }
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xffff) == 0 && (version_ >> 24) >= 1 && (version_ >> 24) <= 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": big-endian GGUF files are not supported"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": unsupported GGUF version ", version_, " (only 2 and 3)"));
  }
  ASSIGN_OR_RETURN(uint64_t n_tensors, c.Read<uint64_t>("tensor count"));
  ASSIGN_OR_RETURN(uint64_t n_kv, c.Read<uint64_t>("metadata count"));
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each
  // tensor info at least 8 + 4 + 8 + 4 + 8.
  if (n_kv > c.remaining() / 13) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": truncated or corrupt GGUF file: metadata count ", n_kv,
        " is larger than the file could hold (", c.remaining(), " bytes remain at offset ",
        c.offset(), ")"));
  }
  if (n_tensors > c.remaining() / 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": truncated or corrupt GGUF file: tensor count ", n_tensors,
        " is larger than the file could hold (", c.remaining(), " bytes remain at offset ",
        c.offset(), ")"));
  }

  metadata_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    ASSIGN_OR_RETURN(std::string key,
                     c.ReadString(absl::StrCat("metadata key #", k), kMaxKeyLength));
    if (metadata_index_.count(key)) return c.Error(absl::StrCat("duplicate metadata key '", key, "'"));
    ASSIGN_OR_RETURN(uint32_t type, c.Read<uint32_t>(absl::StrCat("type of key '", key, "'")));
    if (!ValidType(type)) {
      return c.Error(absl::StrCat("key '", key, "' has unknown value type ", type));
    }
    GgufValue value;
    RETURN_IF_ERROR(ReadValue(c, static_cast<GgufType>(type), key, 0, &value));
    metadata_index_[key] = metadata_.size();
    metadata_.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue* a = Find("general.alignment")) {
    if (!a->is_integer() || a->i <= 0 || static_cast<uint64_t>(a->i) > kMaxAlignment ||
        (a->i & (a->i - 1)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": corrupt GGUF file: general.alignment ", a->DebugString(),
          " is not a power of two in [1, ", kMaxAlignment, "]"));
    }
    alignment_ = static_cast<uint64_t>(a->i);
  }

  tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    ASSIGN_OR_RETURN(t.name, c.ReadString(absl::StrCat("tensor #", k, " name"), kMaxKeyLength));
    if (tensor_index_.count(t.name)) {
      return c.Error(absl::StrCat("duplicate tensor name '", t.name, "'"));
    }
    const std::string where = absl::StrCat("tensor '", t.name, "'");
    ASSIGN_OR_RETURN(uint32_t n_dims, c.Read<uint32_t>(where + " dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return c.Error(absl::StrCat(where, " has ", n_dims, " dimensions (must be 1..", kMaxDims, ")"));
    }
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ASSIGN_OR_RETURN(uint64_t dim, c.Read<uint64_t>(where + " dimension"));
      if (dim == 0 || dim > (uint64_t{1} << 40) ||
          static_cast<uint64_t>(elements) > (uint64_t{1} << 50) / dim) {
        return c.Error(absl::StrCat(where, " has absurd dimension ", dim));
      }
      elements *= static_cast<int64_t>(dim);
      t.dims.push_back(static_cast<int64_t>(dim));
    }
    t.num_elements = elements;
    ASSIGN_OR_RETURN(uint32_t raw_type, c.Read<uint32_t>(where + " type"));
    auto info = GetDTypeInfo(raw_type);
    if (!info.ok()) {
      return c.Error(absl::StrCat(where, " has unknown ggml type ", raw_type));
    }
    t.type = static_cast<DType>(raw_type);
    if (t.dims[0] % info->block_size != 0) {
      return c.Error(absl::StrCat(where, " row length ", t.dims[0],
                                  " is not a multiple of the ", info->name, " block size ",
                                  info->block_size));
    }
    ASSIGN_OR_RETURN(t.size_bytes, RowBytes(t.type, elements));
    ASSIGN_OR_RETURN(t.offset, c.Read<uint64_t>(where + " data offset"));
    if (t.offset % alignment_ != 0) {
      return c.Error(absl::StrCat(where, " data offset ", t.offset,
                                  " is not a multiple of the alignment ", alignment_));
    }
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t header_end = c.offset();
  data_offset_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > size_) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": truncated GGUF file: data section would start at offset ", data_offset_,
        " but the file is ", size_, " bytes"));
  }
  for (GgufTensorInfo& t : tensors_) {
    const uint64_t avail = size_ - data_offset_;
    if (t.offset > avail || t.size_bytes > avail - t.offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": truncated or corrupt GGUF file: tensor '", t.name, "' data [",
          data_offset_ + t.offset, ", ", data_offset_ + t.offset + t.size_bytes,
          ") lies outside the file (", size_, " bytes)"));
    }
    t.data = base_ + data_offset_ + t.offset;
  }
  return absl::OkStatus();
}

const GgufValue* GgufFile::Find(absl::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

absl::StatusOr<uint64_t> GgufFile::GetUint(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(absl::StrCat(source_, ": missing key '", key, "'"));
  // uint64 values above 2^63 are valid; only their `i` mirror is negative.
  if (v->type == GgufType::kUint64) return v->u;
  if (!v->is_integer() || v->i < 0) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": key '", key, "' is ",
                                                   v->DebugString(), ", expected an unsigned integer"));
  }
  return static_cast<uint64_t>(v->i);
}

absl::StatusOr<double> GgufFile::GetFloat(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(absl::StrCat(source_, ": missing key '", key, "'"));
  if (v->is_float()) return v->f;
  if (v->type == GgufType::kUint64) return static_cast<double>(v->u);
  if (v->is_integer()) return static_cast<double>(v->i);
  return absl::InvalidArgumentError(
      absl::StrCat(source_, ": key '", key, "' is ", GgufTypeName(v->type), ", expected a number"));
}

absl::StatusOr<std::string> GgufFile::GetString(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(absl::StrCat(source_, ": missing key '", key, "'"));
  if (v->type != GgufType::kString) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": key '", key, "' is ", GgufTypeName(v->type), ", expected string"));
  }
  return v->s;
}

absl::StatusOr<const GgufValue*> GgufFile::GetArray(absl::string_view key,
                                                    GgufType elem_type) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(absl::StrCat(source_, ": missing key '", key, "'"));
  if (v->type != GgufType::kArray || v->elem_type != elem_type) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": key '", key, "' is ",
                                                   v->DebugString(2), ", expected array of ",
                                                   GgufTypeName(elem_type)));
  }
  return v;
}

const GgufTensorInfo* GgufFile::FindTensor(absl::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace shardlm
