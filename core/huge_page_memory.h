// Anonymous memory that asks for transparent huge pages: weights are
// streamed from it again for every token, and 4 KiB pages cost TLB misses.
#ifndef SHARDLM_CORE_HUGE_PAGE_MEMORY_H_
#define SHARDLM_CORE_HUGE_PAGE_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace shardlm {

class HugePageMemory {
 public:
  // `bytes` of zeroed, writable memory, or null when it cannot be mapped.
  // The start is 2 MiB-aligned, so that every whole 2 MiB of the range can
  // become one huge page (a hint: without THP plain pages serve).
  static std::unique_ptr<HugePageMemory> Allocate(size_t bytes);
  ~HugePageMemory();
  HugePageMemory(const HugePageMemory&) = delete;
  HugePageMemory& operator=(const HugePageMemory&) = delete;

  uint8_t* data() const { return static_cast<uint8_t*>(data_); }
  // The mapped size: `bytes` rounded up to whole 4 KiB pages.
  size_t size() const { return bytes_; }

 private:
  HugePageMemory(void* data, size_t bytes) : data_(data), bytes_(bytes) {}
  void* data_;
  size_t bytes_;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_HUGE_PAGE_MEMORY_H_
