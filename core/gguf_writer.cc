#include "core/gguf_writer.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void PutString(std::string* out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

GgufValue Scalar(GgufType t) {
  GgufValue v;
  v.type = t;
  return v;
}

// Whether the `n` (> 0) bytes at `p` are all zero.
bool IsZero(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  return b[0] == 0 && std::memcmp(b, b + 1, n - 1) == 0;
}

}  // namespace

void EncodeGgufValue(const GgufValue& v, std::string* out) {
  switch (v.type) {
    case GgufType::kUint8: Put<uint8_t>(out, v.u); break;
    case GgufType::kInt8: Put<int8_t>(out, v.i); break;
    case GgufType::kUint16: Put<uint16_t>(out, v.u); break;
    case GgufType::kInt16: Put<int16_t>(out, v.i); break;
    case GgufType::kUint32: Put<uint32_t>(out, v.u); break;
    case GgufType::kInt32: Put<int32_t>(out, v.i); break;
    case GgufType::kUint64: Put<uint64_t>(out, v.u); break;
    case GgufType::kInt64: Put<int64_t>(out, v.i); break;
    case GgufType::kFloat32: Put<float>(out, static_cast<float>(v.f)); break;
    case GgufType::kFloat64: Put<double>(out, v.f); break;
    case GgufType::kBool: Put<uint8_t>(out, v.b ? 1 : 0); break;
    case GgufType::kString: PutString(out, v.s); break;
    case GgufType::kArray:
      Put<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      Put<uint64_t>(out, v.arr.size());
      for (const GgufValue& e : v.arr) EncodeGgufValue(e, out);
      break;
  }
}

void GgufWriter::AddValue(const std::string& key, GgufValue value) {
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::AddString(const std::string& key, const std::string& s) {
  GgufValue v = Scalar(GgufType::kString);
  v.s = s;
  AddValue(key, std::move(v));
}

void GgufWriter::AddUint32(const std::string& key, uint32_t x) {
  GgufValue v = Scalar(GgufType::kUint32);
  v.u = x;
  v.i = x;
  AddValue(key, std::move(v));
}

void GgufWriter::AddFloat32(const std::string& key, float x) {
  GgufValue v = Scalar(GgufType::kFloat32);
  v.f = x;
  AddValue(key, std::move(v));
}

void GgufWriter::AddStringArray(const std::string& key, const std::vector<std::string>& xs) {
  GgufValue v = Scalar(GgufType::kArray);
  v.elem_type = GgufType::kString;
  for (const std::string& s : xs) {
    GgufValue e = Scalar(GgufType::kString);
    e.s = s;
    v.arr.push_back(std::move(e));
  }
  AddValue(key, std::move(v));
}

void GgufWriter::AddFloat32Array(const std::string& key, const std::vector<float>& xs) {
  GgufValue v = Scalar(GgufType::kArray);
  v.elem_type = GgufType::kFloat32;
  for (float x : xs) {
    GgufValue e = Scalar(GgufType::kFloat32);
    e.f = x;
    v.arr.push_back(e);
  }
  AddValue(key, std::move(v));
}

void GgufWriter::AddInt32Array(const std::string& key, const std::vector<int32_t>& xs) {
  GgufValue v = Scalar(GgufType::kArray);
  v.elem_type = GgufType::kInt32;
  for (int32_t x : xs) {
    GgufValue e = Scalar(GgufType::kInt32);
    e.i = x;
    v.arr.push_back(e);
  }
  AddValue(key, std::move(v));
}

absl::Status GgufWriter::AddTensor(const std::string& name, std::vector<int64_t> dims, DType type,
                                   DataSource source) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  if (dims.empty() || dims[0] % Info(type).block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", name, ": row length is not a multiple of the ",
                                                   DTypeName(type), " block size"));
  }
  ASSIGN_OR_RETURN(uint64_t size, RowBytes(type, n));
  Tensor t{name, std::move(dims), type, size, data_size_, std::move(source)};
  data_size_ += (size + alignment_ - 1) / alignment_ * alignment_;
  tensors_.push_back(std::move(t));
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensorFromFloats(const std::string& name, std::vector<int64_t> dims,
                                             DType type, std::vector<float> values) {
  const int64_t row = dims.empty() ? 0 : dims[0];
  auto shared = std::make_shared<std::vector<float>>(std::move(values));
  return AddTensor(name, std::move(dims), type,
                   [shared, row, type](const std::function<void(const void*, size_t)>& sink) {
                     ASSIGN_OR_RETURN(uint64_t row_bytes, RowBytes(type, row));
                     std::string buf(row_bytes, '\0');
                     for (size_t r = 0; r * row < shared->size(); ++r) {
                       RETURN_IF_ERROR(QuantizeRow(type, shared->data() + r * row, row, buf.data()));
                       sink(buf.data(), buf.size());
                     }
                     return absl::OkStatus();
                   });
}

std::string GgufWriter::EncodeHeader() const {
  std::string header;
  Put<uint32_t>(&header, 0x46554747);
  Put<uint32_t>(&header, 3);
  Put<uint64_t>(&header, tensors_.size());
  // Readers assume 32 unless the file says otherwise: declare any other
  // alignment (unless the caller already did).
  bool declare_alignment = alignment_ != 32;
  for (const auto& kv : metadata_) {
    if (kv.first == "general.alignment") declare_alignment = false;
  }
  Put<uint64_t>(&header, metadata_.size() + (declare_alignment ? 1 : 0));
  for (const auto& [key, value] : metadata_) {
    PutString(&header, key);
    Put<uint32_t>(&header, static_cast<uint32_t>(value.type));
    EncodeGgufValue(value, &header);
  }
  if (declare_alignment) {
    PutString(&header, "general.alignment");
    Put<uint32_t>(&header, static_cast<uint32_t>(GgufType::kUint32));
    Put<uint32_t>(&header, static_cast<uint32_t>(alignment_));
  }
  for (const Tensor& t : tensors_) {
    PutString(&header, t.name);
    Put<uint32_t>(&header, t.dims.size());
    for (int64_t d : t.dims) Put<uint64_t>(&header, d);
    Put<uint32_t>(&header, static_cast<uint32_t>(t.type));
    Put<uint64_t>(&header, t.offset);
  }
  header.resize((header.size() + alignment_ - 1) / alignment_ * alignment_, '\0');
  return header;
}

uint64_t GgufWriter::file_size() const { return EncodeHeader().size() + data_size_; }

absl::Status GgufWriter::Stream(const std::function<void(const void*, size_t)>& sink,
                              const std::function<void(uint64_t, uint64_t)>& progress) const {
  const std::string header = EncodeHeader();
  sink(header.data(), header.size());
  const std::string zeros(alignment_, '\0');
  uint64_t done = 0;
  for (const Tensor& t : tensors_) {
    uint64_t written = 0;
    RETURN_IF_ERROR(t.source([&](const void* p, size_t n) {
      sink(p, n);
      written += n;
    }));
    if (written != t.size) {
      return absl::InternalError(absl::StrCat("tensor ", t.name, ": source wrote ", written,
                                              " bytes, expected ", t.size));
    }
    const uint64_t pad = (alignment_ - written % alignment_) % alignment_;
    sink(zeros.data(), pad);
    done += t.size;
    if (progress) progress(done, data_size_);
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::Write(const std::string& path,
                               const std::function<void(uint64_t, uint64_t)>& progress) const {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "wb"), fclose);
  if (!f) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot create file: ", strerror(errno)));
  bool io_ok = true;
  uint64_t size = 0;
  RETURN_IF_ERROR(Stream(
      [&](const void* p, size_t n) {
        size += n;
        // Runs of zeros of a whole page or more become holes (a sparse file).
        if (n >= 4096 && IsZero(p, n)) {
          if (fseeko(f.get(), static_cast<off_t>(n), SEEK_CUR) != 0) io_ok = false;
        } else if (n > 0 && fwrite(p, 1, n, f.get()) != n) {
          io_ok = false;
        }
      },
      progress));
  // A trailing hole: extend the file to its full size.
  if (!io_ok || fflush(f.get()) != 0 || ftruncate(fileno(f.get()), static_cast<off_t>(size)) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": write failed: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GgufWriter::Serialize() const {
  std::string out;
  RETURN_IF_ERROR(Stream([&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); },
                       nullptr));
  return out;
}

}  // namespace shardlm
