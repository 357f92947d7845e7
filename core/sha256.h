// SHA-256 (OpenSSL) for integrity checks: a model file's identity across
// root and workers, and the weight bytes streamed to a worker.
#ifndef SHARDLM_CORE_SHA256_H_
#define SHARDLM_CORE_SHA256_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace shardlm {

inline constexpr size_t kSha256Size = 32;

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::Span<const uint8_t> bytes);
  // The 32-byte digest of everything given so far; ends the hash.
  std::string Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The digest of the whole file at `path`. `progress` (if set) is called with
// (bytes done, total) as it reads. Errors name the path.
absl::StatusOr<std::string> Sha256File(
    const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress = nullptr);

// Lower-case hex of `digest`.
std::string HexDigest(const std::string& digest);

}  // namespace shardlm

#endif  // SHARDLM_CORE_SHA256_H_
