// Single-thread matrix-vector throughput of every kernel path, weight type
// and numerics mode, in bytes of weight data per second.
//
//   bazel run -c opt //backends/cpu:kernels_bench -- --benchmark_min_time=0.1
//
// Each benchmark streams a ~64 MiB weight matrix (larger than the last-level
// cache) row by row against one activation vector, so the numbers show how
// close a kernel comes to single-core memory bandwidth.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/kernels.h"
#include "core/dtype.h"

namespace shardlm::cpu {
namespace {

constexpr int64_t kMatrixBytes = int64_t{64} << 20;

enum class WType { kF32, kF16, kBF16, kQ8_0, kQ4_0 };
constexpr WType kTypes[] = {WType::kQ4_0, WType::kQ8_0, WType::kF16, WType::kBF16, WType::kF32};

const char* Name(WType t) {
  switch (t) {
    case WType::kF32: return "f32";
    case WType::kF16: return "f16";
    case WType::kBF16: return "bf16";
    case WType::kQ8_0: return "q8_0";
    case WType::kQ4_0: return "q4_0";
  }
  return "?";
}

int64_t RowBytesOf(WType t, int64_t cols) {
  switch (t) {
    case WType::kF32: return cols * 4;
    case WType::kF16:
    case WType::kBF16: return cols * 2;
    case WType::kQ8_0: return cols / kQK * sizeof(BlockQ8_0);
    case WType::kQ4_0: return cols / kQK * sizeof(BlockQ4_0);
  }
  return 0;
}

uint64_t Next(uint64_t& s) {  // xorshift64*
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1Dull;
}

float RandUnit(uint64_t& s) {  // [-1, 1)
  return static_cast<float>(static_cast<int64_t>(Next(s) >> 40) - (int64_t{1} << 23)) * 0x1p-23f;
}

// A weight matrix with plausible values: small scales and ordinary floats.
struct Matrix {
  int64_t rows = 0, row_bytes = 0;
  std::vector<uint8_t> data;
  const void* row(int64_t r) const { return data.data() + r * row_bytes; }
};

const Matrix& GetMatrix(WType t, int64_t cols, int64_t bytes = kMatrixBytes) {
  static auto* cache = new std::map<std::tuple<WType, int64_t, int64_t>, std::unique_ptr<Matrix>>();
  auto& m = (*cache)[{t, cols, bytes}];
  if (m) return *m;
  m = std::make_unique<Matrix>();
  m->row_bytes = RowBytesOf(t, cols);
  m->rows = bytes / m->row_bytes;
  m->data.resize(m->rows * m->row_bytes);
  uint64_t s = 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(t) << 32) ^ cols;
  for (int64_t r = 0; r < m->rows; ++r) {
    uint8_t* p = m->data.data() + r * m->row_bytes;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = RandUnit(s) * 0.05f;
      switch (t) {
        case WType::kF32: std::memcpy(p + 4 * c, &v, 4); break;
        case WType::kF16: { const uint16_t h = F32ToF16(v); std::memcpy(p + 2 * c, &h, 2); break; }
        case WType::kBF16: { const uint16_t h = F32ToBF16(v); std::memcpy(p + 2 * c, &h, 2); break; }
        default: break;
      }
    }
    if (t == WType::kQ8_0) {
      auto* b = reinterpret_cast<BlockQ8_0*>(p);
      for (int64_t k = 0; k < cols / kQK; ++k) {
        b[k].d = F32ToF16(0.001f * (1.0f + RandUnit(s) * 0.5f));
        for (int i = 0; i < kQK; ++i) b[k].qs[i] = static_cast<int8_t>(Next(s) % 255 - 127);
      }
    } else if (t == WType::kQ4_0) {
      auto* b = reinterpret_cast<BlockQ4_0*>(p);
      for (int64_t k = 0; k < cols / kQK; ++k) {
        b[k].d = F32ToF16(0.01f * (1.0f + RandUnit(s) * 0.5f));
        for (int i = 0; i < kQK / 2; ++i) b[k].qs[i] = static_cast<uint8_t>(Next(s));
      }
    }
  }
  return *m;
}

void BM_MatVec(benchmark::State& state, const KernelTable* k, WType t, bool exact, int64_t cols) {
  const Matrix& m = GetMatrix(t, cols);
  uint64_t s = 12345;
  std::vector<float> x(cols);
  for (auto& v : x) v = RandUnit(s);
  std::vector<double> xs(cols);
  for (int64_t i = 0; i < cols; ++i) xs[i] = static_cast<double>(x[i]) * kFixedScale;
  std::vector<ActBlockQ8> xq(cols / kQK);
  k->quantize_act_q8(x.data(), cols, xq.data());
  const int64_t nb = cols / kQK;

  for (auto _ : state) {
    int64_t isum = 0;
    float fsum = 0;
    for (int64_t r = 0; r < m.rows; ++r) {
      const void* w = m.row(r);
      switch (t) {
        case WType::kF32:
          if (exact) isum += k->dot_f32_exact(static_cast<const float*>(w), xs.data(), cols);
          else fsum += k->dot_f32_fast(static_cast<const float*>(w), x.data(), cols);
          break;
        case WType::kF16:
          if (exact) isum += k->dot_f16_exact(static_cast<const uint16_t*>(w), xs.data(), cols);
          else fsum += k->dot_f16_fast(static_cast<const uint16_t*>(w), x.data(), cols);
          break;
        case WType::kBF16:
          if (exact) isum += k->dot_bf16_exact(static_cast<const uint16_t*>(w), xs.data(), cols);
          else fsum += k->dot_bf16_fast(static_cast<const uint16_t*>(w), x.data(), cols);
          break;
        case WType::kQ8_0:
          if (exact) isum += k->dot_q8_0_exact(static_cast<const BlockQ8_0*>(w), xq.data(), nb);
          else fsum += k->dot_q8_0_fast(static_cast<const BlockQ8_0*>(w), xq.data(), nb);
          break;
        case WType::kQ4_0:
          if (exact) isum += k->dot_q4_0_exact(static_cast<const BlockQ4_0*>(w), xq.data(), nb);
          else fsum += k->dot_q4_0_fast(static_cast<const BlockQ4_0*>(w), xq.data(), nb);
          break;
      }
    }
    benchmark::DoNotOptimize(isum);
    benchmark::DoNotOptimize(fsum);
  }
  state.SetBytesProcessed(state.iterations() * m.rows * m.row_bytes);
  state.counters["rows"] = static_cast<double>(m.rows);
  if (t == WType::kQ8_0 || t == WType::kQ4_0) {
    state.counters["blocks/s"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * m.rows * nb, benchmark::Counter::kIsRate);
  }
}

// q4_0 through the multi-row entries, kRowBlock rows a call.
// kRowBlock 1: the single-row dots. bytes: the matrix size (small: in
// cache, so the kernels' compute throughput).
void BM_Q4Rows(benchmark::State& state, const KernelTable* k, bool exact, int64_t cols,
               int kRowBlock, int64_t bytes) {
  const Matrix& m = GetMatrix(WType::kQ4_0, cols, bytes);
  uint64_t s = 12345;
  std::vector<float> x(cols);
  for (auto& v : x) v = RandUnit(s);
  std::vector<ActBlockQ8> xq(cols / kQK);
  k->quantize_act_q8(x.data(), cols, xq.data());
  const int64_t nb = cols / kQK;
  int64_t iout[64];
  float fout[64];
  for (auto _ : state) {
    int64_t isum = 0;
    float fsum = 0;
    for (int64_t r = 0; r < m.rows; r += kRowBlock) {
      const int rows = static_cast<int>(m.rows - r < kRowBlock ? m.rows - r : kRowBlock);
      if (kRowBlock == 1) {
        if (exact) isum += k->dot_q4_0_exact(static_cast<const BlockQ4_0*>(m.row(r)), xq.data(), nb);
        else fsum += k->dot_q4_0_fast(static_cast<const BlockQ4_0*>(m.row(r)), xq.data(), nb);
      } else if (exact) {
        k->dot_q4_0_exact_rows(m.row(r), m.row_bytes, rows, xq.data(), nb, iout);
        isum += iout[0];
      } else {
        k->dot_q4_0_fast_rows(m.row(r), m.row_bytes, rows, xq.data(), nb, fout);
        fsum += fout[0];
      }
    }
    benchmark::DoNotOptimize(isum);
    benchmark::DoNotOptimize(fsum);
  }
  state.SetBytesProcessed(state.iterations() * m.rows * m.row_bytes);
  state.counters["blocks/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * m.rows * nb, benchmark::Counter::kIsRate);
}

// q4_0 rows in the q4_0x8 layout (paths that have its kernels), 16 rows a
// call, the activation prepared once as the backend does per token.
void BM_Q4x8Rows(benchmark::State& state, const KernelTable* k, bool exact, int64_t cols,
                 int64_t bytes) {
  const Matrix& plain = GetMatrix(WType::kQ4_0, cols, bytes);
  const int64_t nb = cols / kQK;
  std::vector<uint8_t> packed(plain.data.size());
  RepackQ4_0x8Rows(static_cast<const BlockQ4_0*>(plain.row(0)), plain.rows, nb, packed.data());
  uint64_t s = 12345;
  std::vector<float> x(cols);
  for (auto& v : x) v = RandUnit(s);
  std::vector<ActBlockQ8> xq(nb);
  k->quantize_act_q8(x.data(), cols, xq.data());
  std::vector<uint8_t> act(k->q4_0x8_act_bytes(nb));
  k->prepare_q4_0x8_act(xq.data(), nb, act.data());
  constexpr int kRowBlock = 16;
  int64_t iout[kRowBlock];
  float fout[kRowBlock];
  for (auto _ : state) {
    int64_t isum = 0;
    float fsum = 0;
    for (int64_t r = 0; r < plain.rows; r += kRowBlock) {
      const int rows = static_cast<int>(plain.rows - r < kRowBlock ? plain.rows - r : kRowBlock);
      const uint8_t* w = packed.data() + r * plain.row_bytes;
      if (exact) {
        k->dot_q4_0x8_exact_rows(w, plain.row_bytes, rows, act.data(), xq.data(), nb, iout);
        isum += iout[0];
      } else {
        k->dot_q4_0x8_fast_rows(w, plain.row_bytes, rows, act.data(), xq.data(), nb, fout);
        fsum += fout[0];
      }
    }
    benchmark::DoNotOptimize(isum);
    benchmark::DoNotOptimize(fsum);
  }
  state.SetBytesProcessed(state.iterations() * plain.rows * plain.row_bytes);
}

void BM_QuantizeAct(benchmark::State& state, const KernelTable* k, int64_t n) {
  uint64_t s = 777;
  std::vector<float> x(n);
  for (auto& v : x) v = RandUnit(s) * 4.0f;
  std::vector<ActBlockQ8> out(n / kQK);
  for (auto _ : state) {
    k->quantize_act_q8(x.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(float)));
}

int RegisterAll() {
  for (const std::string& isa : SupportedIsas()) {
    const KernelTable* k = *SelectKernels(isa);
    for (WType t : kTypes) {
      for (bool exact : {true, false}) {
        for (int64_t cols : {2048, 8192}) {
          const std::string name = isa + "/" + Name(t) + "/" + (exact ? "exact" : "fast") + "/" +
                                   std::to_string(cols);
          benchmark::RegisterBenchmark(name.c_str(), BM_MatVec, k, t, exact, cols)
              ->Unit(benchmark::kMillisecond)
              ->MinTime(0.2);
        }
      }
    }
    for (bool exact : {true, false}) {
      for (int64_t bytes : {kMatrixBytes, int64_t{256} << 10}) {
        for (int rb : {1, 16}) {
          for (int64_t cols : {2048, 8192}) {
            const std::string name = isa + (rb == 1 ? "/q4_0_row1/" : "/q4_0_rows/") +
                                     (exact ? "exact" : "fast") + "/" + std::to_string(cols) +
                                     (bytes == kMatrixBytes ? "" : "/hot");
            benchmark::RegisterBenchmark(name.c_str(), BM_Q4Rows, k, exact, cols, rb, bytes)
                ->Unit(benchmark::kMicrosecond)
                ->MinTime(0.2);
          }
        }
      }
    }
    for (bool exact : {true, false}) {
      for (int64_t bytes : {kMatrixBytes, int64_t{256} << 10}) {
        for (int64_t cols : {2048, 8192}) {
          if (k->dot_q4_0x8_fast_rows == nullptr) continue;
          const std::string name = isa + "/q4_0x8_rows/" + (exact ? "exact" : "fast") + "/" +
                                   std::to_string(cols) + (bytes == kMatrixBytes ? "" : "/hot");
          benchmark::RegisterBenchmark(name.c_str(), BM_Q4x8Rows, k, exact, cols, bytes)
              ->Unit(benchmark::kMicrosecond)
              ->MinTime(0.2);
        }
      }
    }
    const std::string qname = isa + "/quantize_act_q8/8192";
    benchmark::RegisterBenchmark(qname.c_str(), BM_QuantizeAct, k, int64_t{8192})
        ->Unit(benchmark::kMicrosecond)
        ->MinTime(0.2);
  }
  return 0;
}

const int kRegistered = RegisterAll();

}  // namespace
}  // namespace shardlm::cpu
