// What a worker keeps of the weights the root streamed to it, from one
// cluster session to the next: after a recovery re-plans the cluster, a
// surviving worker receives only the bytes of its new slices that it does
// not hold yet, and lets go of those it no longer needs.
#ifndef SHARDLM_CORE_WEIGHT_CACHE_H_
#define SHARDLM_CORE_WEIGHT_CACHE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gguf.h"
#include "core/gguf_image.h"
#include "core/shard_weights.h"

namespace shardlm {

// A set of file bytes as sorted, disjoint, non-adjacent ranges.
class ByteRangeSet {
 public:
  ByteRangeSet() = default;
  explicit ByteRangeSet(const std::vector<ByteRange>& ranges);

  // Adds [r.offset, r.offset + r.size).
  void Add(const ByteRange& r) { AddAll({r}); }
  // Adds every range of `ranges` (O(n log n) in all the ranges).
  void AddAll(const std::vector<ByteRange>& ranges);
  // The parts of `ranges` not in this set, in the order of `ranges`.
  std::vector<ByteRange> Missing(const std::vector<ByteRange>& ranges) const;
  // This set without `other`.
  ByteRangeSet Minus(const ByteRangeSet& other) const;

  const std::vector<ByteRange>& ranges() const { return ranges_; }
  uint64_t bytes() const;

 private:
  std::vector<ByteRange> ranges_;
};

// Total bytes of `ranges`.
uint64_t TotalBytes(const std::vector<ByteRange>& ranges);

// One worker's streamed model image, kept across sessions. Not thread-safe;
// the worker uses it between sessions and while loading one.
class StreamedWeights {
 public:
  // The model the image holds (raw SHA-256; empty: none yet).
  const std::string& sha256() const { return sha256_; }
  // Bytes of the data section that arrived and passed their checksum.
  const ByteRangeSet& held() const { return held_; }

  // Starts over on a new model: an empty image made from its header.
  absl::Status Reset(const std::string& sha256, absl::Span<const uint8_t> header,
                     uint64_t file_size, const std::string& source);
  // Where streamed bytes go (valid after Reset).
  GgufImageBuilder* image() { return image_.get(); }
  // The image as a GgufFile (shared; it lives on while a session uses it).
  absl::StatusOr<std::shared_ptr<const GgufFile>> File();
  // `ranges` arrived and were checked.
  void MarkHeld(const std::vector<ByteRange>& ranges);
  // Keeps only the bytes of `needed` (the rest is returned to the system).
  void KeepOnly(const std::vector<ByteRange>& needed);

 private:
  std::string sha256_;
  std::unique_ptr<GgufImageBuilder> image_;
  ByteRangeSet held_;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_WEIGHT_CACHE_H_
