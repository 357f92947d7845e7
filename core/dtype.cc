#include "core/dtype.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace shardlm {
namespace {

struct Entry {
  uint32_t raw;
  DTypeInfo info;
};

constexpr Entry kTypes[] = {
    {0, {"f32", 1, 4, true}},          {1, {"f16", 1, 2, true}},
    {2, {"q4_0", 32, 18, true}},       {3, {"q4_1", 32, 20, false}},
    {6, {"q5_0", 32, 22, false}},      {7, {"q5_1", 32, 24, false}},
    {8, {"q8_0", 32, 34, true}},       {9, {"q8_1", 32, 36, false}},
    {10, {"q2_k", 256, 84, false}},    {11, {"q3_k", 256, 110, false}},
    {12, {"q4_k", 256, 144, false}},   {13, {"q5_k", 256, 176, false}},
    {14, {"q6_k", 256, 210, false}},   {15, {"q8_k", 256, 292, false}},
    {16, {"iq2_xxs", 256, 66, false}}, {17, {"iq2_xs", 256, 74, false}},
    {18, {"iq3_xxs", 256, 98, false}}, {19, {"iq1_s", 256, 50, false}},
    {20, {"iq4_nl", 32, 18, false}},   {21, {"iq3_s", 256, 110, false}},
    {22, {"iq2_s", 256, 82, false}},   {23, {"iq4_xs", 256, 136, false}},
    {24, {"i8", 1, 1, false}},         {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},        {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},        {29, {"iq1_m", 256, 56, false}},
    {30, {"bf16", 1, 2, true}},
};

const Entry* FindEntry(uint32_t raw) {
  for (const Entry& e : kTypes) {
    if (e.raw == raw) return &e;
  }
  return nullptr;
}

float Fp32FromBits(uint32_t w) {
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}

uint32_t Fp32ToBits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, 4);
  return w;
}

}  // namespace

absl::StatusOr<DTypeInfo> GetDTypeInfo(uint32_t raw) {
  const Entry* e = FindEntry(raw);
  if (e == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown ggml type ", raw));
  return e->info;
}

const DTypeInfo& Info(DType type) {
  static const DTypeInfo kUnknown = {"unknown", 1, 1, false};
  const Entry* e = FindEntry(static_cast<uint32_t>(type));
  return e == nullptr ? kUnknown : e->info;
}

std::string DTypeName(DType type) { return Info(type).name; }

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (const Entry& e : kTypes) {
    if (e.info.compute_supported && lower == e.info.name) return static_cast<DType>(e.raw);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown type '", name, "' (expected f32, f16, bf16, q8_0 or q4_0)"));
}

absl::StatusOr<uint64_t> RowBytes(DType type, int64_t n) {
  const DTypeInfo& info = Info(type);
  if (n < 0 || n % info.block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(n, " elements of ", info.name,
                                                   " is not a multiple of its block size ",
                                                   info.block_size));
  }
  const uint64_t blocks = static_cast<uint64_t>(n / info.block_size);
  if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(info.type_size)) {
    return absl::InvalidArgumentError("tensor byte size overflows");
  }
  return blocks * static_cast<uint64_t>(info.type_size);
}

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0) return Fp32FromBits(sign);
    // Subnormal: normalise.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    mant &= 0x3ff;
    return Fp32FromBits(sign | static_cast<uint32_t>(127 - 15 - e) << 23 | mant << 13);
  }
  if (exp == 31) return Fp32FromBits(sign | 0x7f800000u | mant << 13);
  return Fp32FromBits(sign | (exp + 127 - 15) << 23 | mant << 13);
}

uint16_t F32ToF16(float f) {
  const uint32_t x = Fp32ToBits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN
    return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
  }
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                        // below the smallest normal half
    // Subnormal half: value = abs_float / 2^-24, rounded to nearest even.
    const float a = Fp32FromBits(abs);
    const float scaled = a * 16777216.0f;  // exact (power of two)
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  const uint32_t exp = (abs >> 23) - 127 + 15;
  uint32_t mant = abs & 0x7fffff;
  uint32_t half = exp << 10 | mant >> 13;
  const uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // may carry into exp: fine
  return sign | static_cast<uint16_t>(half);
}

uint16_t F32ToBF16(float f) {
  uint32_t x = Fp32ToBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

absl::Status DequantizeRow(DType type, const void* src, int64_t n, float* dst) {
  const DTypeInfo& info = Info(type);
  if (!info.compute_supported || n % info.block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot dequantize ", n, " x ", info.name));
  }
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      break;
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      break;
    }
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(s[i]);
      break;
    }
    case DType::kQ8_0: {
      const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float d = F16ToF32(b[k].d);
        for (int i = 0; i < kQK; ++i) dst[k * kQK + i] = d * b[k].qs[i];
      }
      break;
    }
    case DType::kQ4_0: {
      const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float d = F16ToF32(b[k].d);
        for (int i = 0; i < kQK / 2; ++i) {
          dst[k * kQK + i] = d * ((b[k].qs[i] & 0x0f) - 8);
          dst[k * kQK + i + kQK / 2] = d * ((b[k].qs[i] >> 4) - 8);
        }
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("cannot dequantize ", info.name));
  }
  return absl::OkStatus();
}

absl::Status QuantizeRow(DType type, const float* src, int64_t n, void* dst) {
  const DTypeInfo& info = Info(type);
  if (!info.compute_supported || n % info.block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot quantize ", n, " x ", info.name));
  }
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      break;
    case DType::kF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToF16(src[i]);
      break;
    }
    case DType::kBF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(src[i]);
      break;
    }
    case DType::kQ8_0: {
      BlockQ8_0* b = static_cast<BlockQ8_0*>(dst);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float* x = src + k * kQK;
        float amax = 0.0f;
        for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[k].d = F32ToF16(d);
        for (int i = 0; i < kQK; ++i) b[k].qs[i] = static_cast<int8_t>(std::nearbyint(x[i] * id));
      }
      break;
    }
    case DType::kQ4_0: {
      BlockQ4_0* b = static_cast<BlockQ4_0*>(dst);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float* x = src + k * kQK;
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < kQK; ++i) {
          if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
          }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[k].d = F32ToF16(d);
        for (int i = 0; i < kQK / 2; ++i) {
          const int lo = std::min(15, static_cast<int>(x[i] * id + 8.5f));
          const int hi = std::min(15, static_cast<int>(x[i + kQK / 2] * id + 8.5f));
          b[k].qs[i] = static_cast<uint8_t>(lo | hi << 4);
        }
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("cannot quantize ", info.name));
  }
  return absl::OkStatus();
}

}  // namespace shardlm
