#include "core/weight_cache.h"

#include <algorithm>
#include <utility>

#include "core/status_macros.h"

namespace shardlm {

ByteRangeSet::ByteRangeSet(const std::vector<ByteRange>& ranges) { AddAll(ranges); }

void ByteRangeSet::AddAll(const std::vector<ByteRange>& ranges) {
  std::vector<ByteRange> all = ranges_;
  for (const ByteRange& r : ranges) {
    if (r.size > 0) all.push_back(r);
  }
  std::sort(all.begin(), all.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  ranges_.clear();
  for (const ByteRange& r : all) {
    if (!ranges_.empty() && r.offset <= ranges_.back().offset + ranges_.back().size) {
      ByteRange& last = ranges_.back();
      last.size = std::max(last.offset + last.size, r.offset + r.size) - last.offset;
    } else {
      ranges_.push_back(r);
    }
  }
}

std::vector<ByteRange> ByteRangeSet::Missing(const std::vector<ByteRange>& ranges) const {
  std::vector<ByteRange> out;
  for (const ByteRange& r : ranges) {
    uint64_t at = r.offset;
    const uint64_t end = r.offset + r.size;
    // The first held range that ends after `at`.
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), at,
                               [](uint64_t v, const ByteRange& x) { return v < x.offset + x.size; });
    for (; at < end && it != ranges_.end() && it->offset < end; ++it) {
      if (it->offset > at) out.push_back({at, it->offset - at});
      at = std::max(at, it->offset + it->size);
    }
    if (at < end) out.push_back({at, end - at});
  }
  return out;
}

ByteRangeSet ByteRangeSet::Minus(const ByteRangeSet& other) const {
  return ByteRangeSet(other.Missing(ranges_));
}

uint64_t ByteRangeSet::bytes() const { return TotalBytes(ranges_); }

uint64_t TotalBytes(const std::vector<ByteRange>& ranges) {
  uint64_t total = 0;
  for (const ByteRange& r : ranges) total += r.size;
  return total;
}

absl::Status StreamedWeights::Reset(const std::string& sha256, absl::Span<const uint8_t> header,
                                    uint64_t file_size, const std::string& source) {
  sha256_.clear();
  held_ = ByteRangeSet();
  image_.reset();
  ASSIGN_OR_RETURN(image_, GgufImageBuilder::Create(header, file_size, source));
  sha256_ = sha256;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const GgufFile>> StreamedWeights::File() {
  if (image_ == nullptr) return absl::FailedPreconditionError("no streamed model image");
  return image_->Share();
}

void StreamedWeights::MarkHeld(const std::vector<ByteRange>& ranges) { held_.AddAll(ranges); }

void StreamedWeights::KeepOnly(const std::vector<ByteRange>& needed) {
  if (image_ == nullptr) return;
  const ByteRangeSet drop = held_.Minus(ByteRangeSet(needed));
  for (const ByteRange& r : drop.ranges()) image_->Release(r.offset, r.size);
  held_ = held_.Minus(drop);
}

}  // namespace shardlm
