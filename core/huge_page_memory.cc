#include "core/huge_page_memory.h"

#include <sys/mman.h>

namespace shardlm {

std::unique_ptr<HugePageMemory> HugePageMemory::Allocate(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  bytes = (bytes + 4095) & ~size_t{4095};  // whole pages, so the tail unmaps cleanly
  if (bytes == 0) bytes = 4096;
  void* p = mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + kHuge - 1) & ~(kHuge - 1);
  if (aligned > start) munmap(p, aligned - start);
  const size_t tail = start + bytes + kHuge - (aligned + bytes);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + bytes), tail);
  void* data = reinterpret_cast<void*>(aligned);
  madvise(data, bytes, MADV_HUGEPAGE);  // advisory: plain pages work too
  return std::unique_ptr<HugePageMemory>(new HugePageMemory(data, bytes));
}

HugePageMemory::~HugePageMemory() { munmap(data_, bytes_); }

}  // namespace shardlm
