#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
#include "backends/cpu/kernels.h"
using namespace shardlm::cpu;
int main(int argc, char** argv) {
  const KernelTable* k = *SelectKernels("auto");
  int fd = open("/tmp/l1b_q4.gguf", O_RDONLY); struct stat st; fstat(fd, &st);
  const uint8_t* m = (const uint8_t*)mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int64_t cols = 2048, nb = cols / 32; const size_t stride = nb * 18;
  const int64_t rows = 128000; const size_t bytes = rows * stride;
  const uint8_t* filew = m + 4096 * 16;
  uint8_t* anon = (uint8_t*)aligned_alloc(4096, (bytes + 4095) / 4096 * 4096); memcpy(anon, filew, bytes);
  std::vector<float> x(cols); for (auto& v : x) v = (rand() % 1000) / 500.0f - 1;
  std::vector<ActBlockQ8> xq(nb); k->quantize_act_q8(x.data(), cols, xq.data());
  for (int rep = 0; rep < 3; ++rep)
  for (int src = 0; src < 2; ++src) for (int th : {1, 2}) {
    const uint8_t* w = src ? anon : filew;
    auto run = [&](int t) { float out[8]; int64_t per = rows / th; for (int64_t r = t * per; r < (t + 1) * per; r += 8) k->dot_q4_0_fast_rows(w + r * stride, stride, 8, xq.data(), nb, out); };
    double best = 1e9;
    for (int it = 0; it < 5; ++it) {
      auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> ts; for (int t = 1; t < th; ++t) ts.emplace_back(run, t); run(0); for (auto& tt : ts) tt.join();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    printf("%s threads=%d %.1f GB/s\n", src ? "anon" : "file", th, bytes / best / 1e9);
  }
}
