// Decode-step matrix-vector products through the CPU backend itself (its
// thread pool, q4_0 repacking and row split), the same weight bytes cut into
// the matrices of real layers or left as one matrix. The gap between the two
// is what a decode step loses at the start and end of every product (memory
// latency before the prefetchers stream, the last chunk's imbalance), which
// the kernel benchmarks, streaming one large matrix, do not show. The
// layer sets also run grouped (q|k|v and gate|up as one MatMulGroup each,
// as the engine runs them); us_per_call is per MatMul or MatMulGroup.
//
//   bazel run -c opt //backends/cpu:matmul_shapes_bench -- --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/cpu/cpu_backend.h"
#include "core/dtype.h"

namespace shardlm {
namespace {

// Stops the benchmark binary on a failed backend call (setup cannot fail
// on a working backend).
void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "matmul_shapes_bench: %s\n", status.ToString().c_str());
    std::abort();
  }
}

template <typename T>
T Value(absl::StatusOr<T> v) {
  Check(v.status());
  return *std::move(v);
}

// One weight matrix with its input and output vectors.
struct Product {
  std::unique_ptr<Buffer> w, x, out;
  int64_t bytes = 0;
};

// q4_0 weights of random quants and small scales, one product per shape.
std::vector<Product> MakeProducts(CpuBackend* backend,
                                  const std::vector<std::pair<int64_t, int64_t>>& shapes) {
  std::vector<Product> products;
  std::mt19937_64 rng(11);
  for (const auto& [rows, cols] : shapes) {
    const int64_t bytes = rows * (cols / kQK) * static_cast<int64_t>(sizeof(BlockQ4_0));
    std::vector<uint8_t> raw(bytes);
    for (uint8_t& b : raw) b = static_cast<uint8_t>(rng());
    const uint16_t scale = F32ToF16(0.01f);
    for (int64_t i = 0; i < bytes; i += sizeof(BlockQ4_0)) std::memcpy(&raw[i], &scale, 2);
    Product p;
    p.w = Value(backend->CreateWeight(DType::kQ4_0, rows, cols, raw.data()));
    p.x = Value(backend->CreateActivation(1, cols));
    p.out = Value(backend->CreateActivation(1, rows));
    const std::vector<float> ones(cols, 0.5f);
    Check(backend->Write(ones, 0, p.x.get()));
    p.bytes = bytes;
    products.push_back(std::move(p));
  }
  return products;
}

// The matrices of `layers` llama3-1b layers (q, k, v, o, gate, up, down).
std::vector<std::pair<int64_t, int64_t>> Llama1bLayers(int layers) {
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int l = 0; l < layers; ++l) {
    for (const auto& s : {std::pair<int64_t, int64_t>{2048, 2048}, {512, 2048}, {512, 2048},
                          {2048, 2048}, {8192, 2048}, {8192, 2048}, {2048, 8192}}) {
      shapes.push_back(s);
    }
  }
  return shapes;
}

// `what`: "layers" (8 llama3-1b layers, 273 MB), or "one" (the same bytes as
// one 2048-column matrix), or a repeated shape ROWSxCOLS. With `grouped`
// (layer sets only), q|k|v and gate|up run as one MatMulGroup each, as the
// engine runs them.
void BM_DecodeProducts(benchmark::State& state, int threads, const std::string& what,
                       std::vector<std::pair<int64_t, int64_t>> shapes, bool grouped) {
  BackendOptions options;
  options.threads = threads;
  options.numerics = Numerics::kFast;
  std::unique_ptr<CpuBackend> backend = Value(CpuBackend::Create(options));
  std::vector<Product> products = MakeProducts(backend.get(), shapes);
  int64_t bytes = 0;
  for (const Product& p : products) bytes += p.bytes;
  // Runs of product indices [begin, end) that share one input.
  std::vector<std::pair<size_t, size_t>> runs;
  for (size_t i = 0; i < products.size();) {
    const size_t len = !grouped ? 1 : (i % 7 == 0 ? 3 : (i % 7 == 4 ? 2 : 1));
    runs.push_back({i, i + len});
    i += len;
  }
  std::vector<const Buffer*> ws(products.size());
  std::vector<Buffer*> outs(products.size());
  for (size_t i = 0; i < products.size(); ++i) {
    ws[i] = products[i].w.get();
    outs[i] = products[i].out.get();
  }
  for (auto _ : state) {
    for (const auto& [begin, end] : runs) {
      Check(backend->MatMulGroup(absl::MakeSpan(&ws[begin], end - begin), *products[begin].x, 1,
                                 absl::MakeSpan(&outs[begin], end - begin)));
    }
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["us_per_call"] = benchmark::Counter(
      static_cast<double>(state.iterations() * runs.size()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetLabel(what);
}

int RegisterAll() {
  const std::vector<std::pair<int64_t, int64_t>> layers = Llama1bLayers(8);
  int64_t rows_2048 = 0;  // the layers' bytes as rows of 2048 columns
  for (const auto& [rows, cols] : layers) rows_2048 += rows * cols / 2048;
  const std::vector<std::pair<std::string, std::vector<std::pair<int64_t, int64_t>>>> sets = {
      {"layers", layers},
      {"one", {{rows_2048, 2048}}},
      {"512x2048", std::vector<std::pair<int64_t, int64_t>>(256, {512, 2048})},
      {"2048x2048", std::vector<std::pair<int64_t, int64_t>>(64, {2048, 2048})},
      {"8192x2048", std::vector<std::pair<int64_t, int64_t>>(16, {8192, 2048})},
      {"2048x8192", std::vector<std::pair<int64_t, int64_t>>(16, {2048, 8192})},
      // The footprint alone: a decode product slows as the weights it cycles
      // through grow, even past the last-level cache (page walks, TLB).
      {"layers:2", Llama1bLayers(2)},
      {"layers:4", Llama1bLayers(4)},
      {"layers:16", Llama1bLayers(16)},
  };
  for (int threads : {1, 2}) {
    for (const auto& [what, shapes] : sets) {
      for (bool grouped : {false, true}) {
        if (grouped && what.rfind("layers", 0) != 0) continue;
        const std::string name = "q4_0/" + what + (grouped ? "/grouped" : "") +
                                 "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), BM_DecodeProducts, threads, what, shapes,
                                     grouped)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
  return 0;
}

const int kRegistered = RegisterAll();

}  // namespace
}  // namespace shardlm
