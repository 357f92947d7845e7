#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace shardlm {
namespace {

using Json = nlohmann::json;

absl::Status Bad(const std::string& source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

// Parses the header JSON, rejecting duplicate top-level keys (nlohmann
// would silently keep the last).
absl::StatusOr<Json> ParseHeaderJson(const std::string& source, absl::string_view text) {
  std::set<std::string> seen;
  std::string duplicate;
  Json::parser_callback_t callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const std::string key = parsed.get<std::string>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text.begin(), text.end(), callback);
  } catch (const Json::exception& e) {
    return Bad(source, absl::StrCat("header is not valid JSON (", e.what(), ")"));
  }
  if (!duplicate.empty()) return Bad(source, absl::StrCat("tensor '", duplicate, "' is listed twice"));
  if (!header.is_object()) return Bad(source, "header is not a JSON object");
  return header;
}

absl::StatusOr<uint64_t> NonNegative(const std::string& source, const std::string& name,
                                     const char* field, const Json& v) {
  if (!v.is_number_unsigned()) {
    return Bad(source, absl::StrCat("tensor '", name, "': ", field,
                                    " must hold non-negative integers, got ", v.dump()));
  }
  return v.get<uint64_t>();
}

// One tensor entry: dtype, shape, data_offsets; sizes checked against the
// data section of `data_size` bytes.
absl::StatusOr<SafetensorsTensor> ParseEntry(const std::string& source, const std::string& name,
                                             const Json& entry, uint64_t data_size) {
  if (!entry.is_object()) return Bad(source, absl::StrCat("tensor '", name, "' is not an object"));
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(field)) {
      return Bad(source, absl::StrCat("tensor '", name, "' has no \"", field, "\""));
    }
  }
  SafetensorsTensor t;
  t.name = name;
  if (!entry["dtype"].is_string()) return Bad(source, absl::StrCat("tensor '", name, "': dtype is not a string"));
  t.dtype = entry["dtype"].get<std::string>();
  const int elem = SafetensorsDTypeSize(t.dtype);
  if (elem == 0) return Bad(source, absl::StrCat("tensor '", name, "': unknown dtype '", t.dtype, "'"));
  const Json& shape = entry["shape"];
  if (!shape.is_array()) return Bad(source, absl::StrCat("tensor '", name, "': shape is not an array"));
  unsigned __int128 bytes = elem;
  for (const Json& d : shape) {
    ASSIGN_OR_RETURN(const uint64_t dim, NonNegative(source, name, "shape", d));
    bytes *= dim;
    if (bytes > std::numeric_limits<uint64_t>::max()) {
      return Bad(source, absl::StrCat("tensor '", name, "': shape overflows"));
    }
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  const Json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    return Bad(source, absl::StrCat("tensor '", name, "': data_offsets must be [begin, end]"));
  }
  ASSIGN_OR_RETURN(const uint64_t begin, NonNegative(source, name, "data_offsets", offsets[0]));
  ASSIGN_OR_RETURN(const uint64_t end, NonNegative(source, name, "data_offsets", offsets[1]));
  if (begin > end || end > data_size) {
    return Bad(source, absl::StrCat("tensor '", name, "': data_offsets [", begin, ", ", end,
                                    ") outside the data section of ", data_size, " bytes"));
  }
  if (end - begin != static_cast<uint64_t>(bytes)) {
    return Bad(source, absl::StrCat("tensor '", name, "': ", end - begin, " bytes for ", t.dtype,
                                    " shape ", shape.dump(), ", which needs ",
                                    static_cast<uint64_t>(bytes)));
  }
  t.offset = begin;
  t.size = end - begin;
  return t;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const std::string& source,
                                                                 const Json& m) {
  if (!m.is_object()) return Bad(source, "__metadata__ is not an object");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) return Bad(source, absl::StrCat("__metadata__ value '", k, "' is not a string"));
    out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

int64_t SafetensorsTensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int SafetensorsDTypeSize(absl::string_view dtype) {
  static const std::pair<const char*, int> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2},
      {"U16", 2},  {"F16", 2}, {"BF16", 2}, {"I32", 4},    {"U32", 4},     {"F32", 4},
      {"F64", 8},  {"I64", 8}, {"U64", 8},
  };
  for (const auto& [name, size] : kSizes) {
    if (dtype == name) return size;
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path, "safetensors file"));
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->source_ = path;
  file->mapped_ = std::move(mapped);
  RETURN_IF_ERROR(file->Parse(file->mapped_->bytes()));
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(
    std::string bytes, const std::string& source) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->source_ = source;
  file->owned_ = std::move(bytes);
  RETURN_IF_ERROR(file->Parse(absl::Span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(file->owned_.data()), file->owned_.size())));
  return file;
}

absl::Status SafetensorsFile::Parse(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < 8) {
    return Bad(source_, absl::StrCat("too short for a safetensors file (", bytes.size(), " bytes)"));
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = header_size << 8 | bytes[i];
  if (header_size > kMaxSafetensorsHeader || header_size > bytes.size() - 8) {
    return Bad(source_, absl::StrCat("header length ", header_size, " exceeds the file (",
                                     bytes.size(), " bytes) or the 100 MiB limit"));
  }
  const absl::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header_size);
  if (text.empty() || text[0] != '{') return Bad(source_, "header does not start with '{'");
  ASSIGN_OR_RETURN(const Json header, ParseHeaderJson(source_, text));
  const uint8_t* data = bytes.data() + 8 + header_size;
  const uint64_t data_size = bytes.size() - 8 - header_size;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      ASSIGN_OR_RETURN(metadata_, ParseMetadata(source_, value));
      continue;
    }
    ASSIGN_OR_RETURN(SafetensorsTensor t, ParseEntry(source_, key, value, data_size));
    t.data = data + t.offset;
    tensors_.push_back(std::move(t));
  }
  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.offset != b.offset ? a.offset < b.offset : a.size < b.size;
            });
  uint64_t covered = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const SafetensorsTensor& t = tensors_[i];
    if (t.offset < covered) {
      return Bad(source_, absl::StrCat("tensor '", t.name, "' overlaps tensor '",
                                       tensors_[i - 1].name, "'"));
    }
    if (t.offset > covered) {
      return Bad(source_, absl::StrCat("data bytes [", covered, ", ", t.offset,
                                       ") belong to no tensor (before '", t.name, "')"));
    }
    covered = t.offset + t.size;
    index_[t.name] = i;
  }
  if (covered != data_size) {
    return Bad(source_, absl::StrCat("data section has ", data_size, " bytes but the tensors cover ",
                                     covered, " (truncated or trailing bytes)"));
  }
  return absl::OkStatus();
}

const SafetensorsTensor* SafetensorsFile::Find(absl::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::string EncodeSafetensors(const std::vector<SafetensorsEntry>& entries,
                              const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafetensorsEntry& e : entries) {
    header[e.name] = {{"dtype", e.dtype},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');  // keep the data 8-byte aligned
  std::string out(8, '\0');
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  out += text;
  for (const SafetensorsEntry& e : entries) out += e.bytes;
  return out;
}

}  // namespace shardlm
