#include "backends/cpu/memory_bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

constexpr size_t kLine = 64;     // bytes per 256-bit x2 step and alignment
constexpr int kPasses = 4;       // best of
constexpr uint8_t kFill = 0x01;  // every byte of the buffer

// Sum of `words` 64-bit words, two 256-bit loads per step.
__attribute__((target("avx2"))) uint64_t SumAvx2(const uint64_t* p, size_t words) {
  __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
  for (size_t i = 0; i + 8 <= words; i += 8) {
    a = _mm256_add_epi64(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(a, b));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// Portable sum with independent accumulators the compiler vectorizes (SSE).
uint64_t SumScalar(const uint64_t* p, size_t words) {
  uint64_t s[8] = {};
  for (size_t i = 0; i + 8 <= words; i += 8) {
    for (int k = 0; k < 8; ++k) s[k] += p[i + k];
  }
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

using SumFn = uint64_t (*)(const uint64_t*, size_t);

// Runs `fn(t)` on `threads` threads and waits for all of them.
template <typename Fn>
void Parallel(int threads, Fn fn) {
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(fn, t);
  fn(0);
  for (std::thread& th : pool) th.join();
}

// One read pass: `threads` threads each sum an equal contiguous slice of the
// `words` words at `base`. Returns seconds; stores the total sum in `*sum`.
double ReadPass(SumFn sum_fn, const uint64_t* base, size_t words, int threads, uint64_t* sum) {
  const size_t per = words / threads;
  std::vector<uint64_t> sums(threads, 0);
  const auto start = std::chrono::steady_clock::now();
  Parallel(threads, [&](int t) { sums[t] = sum_fn(base + t * per, per); });
  const auto end = std::chrono::steady_clock::now();
  *sum = 0;
  for (uint64_t s : sums) *sum += s;
  return std::chrono::duration<double>(end - start).count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReadBandwidthProbe>> ReadBandwidthProbe::Create(int threads,
                                                                              size_t bytes) {
  if (threads < 0) return absl::InvalidArgumentError("bandwidth test: threads must be >= 0");
  if (bytes < (size_t{1} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bandwidth test: buffer of ", bytes, " bytes is under 1 MiB"));
  }
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  // Each thread's slice is a whole number of 64-byte steps.
  const size_t step = kLine * threads;
  bytes = bytes / step * step;
  void* buffer = std::aligned_alloc(kLine, bytes);
  if (buffer == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "bandwidth test: cannot allocate ", bytes >> 20, " MiB"));
  }
  auto* bytes_ptr = static_cast<uint8_t*>(buffer);
  const size_t slice = bytes / threads;
  // Each thread touches the slice it will read (first-touch page placement).
  Parallel(threads, [&](int t) { std::memset(bytes_ptr + t * slice, kFill, slice); });
  return std::unique_ptr<ReadBandwidthProbe>(new ReadBandwidthProbe(threads, bytes, buffer));
}

ReadBandwidthProbe::ReadBandwidthProbe(int threads, size_t bytes, void* buffer)
    : threads_(threads), bytes_(bytes), buffer_(buffer) {}

ReadBandwidthProbe::~ReadBandwidthProbe() { std::free(buffer_); }

absl::StatusOr<double> ReadBandwidthProbe::Measure(int passes) {
  if (passes < 1) return absl::InvalidArgumentError("bandwidth test: passes must be >= 1");
  const SumFn sum_fn = __builtin_cpu_supports("avx2") ? &SumAvx2 : &SumScalar;
  const size_t words = bytes_ / sizeof(uint64_t);
  uint64_t expected = 0;  // every word holds kFill in each byte
  std::memset(&expected, kFill, sizeof(expected));
  expected *= words;
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    uint64_t sum = 0;
    const double seconds =
        ReadPass(sum_fn, static_cast<const uint64_t*>(buffer_), words, threads_, &sum);
    if (sum != expected) {
      return absl::InternalError("bandwidth test: the buffer read back wrong (memory error?)");
    }
    if (seconds > 0) best = std::max(best, static_cast<double>(bytes_) / seconds / 1e9);
  }
  return best;
}

absl::StatusOr<double> MeasureReadBandwidth(int threads, size_t bytes) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadBandwidthProbe> probe,
                   ReadBandwidthProbe::Create(threads, bytes));
  return probe->Measure(kPasses);
}

}  // namespace shardlm
