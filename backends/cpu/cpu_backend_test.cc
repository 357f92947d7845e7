#include "backends/cpu/cpu_backend.h"

#include "backends/cpu/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace shardlm {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::unique_ptr<Buffer> Act(Backend& b, int64_t rows, int64_t cols, const std::vector<float>& v) {
  auto buf = b.CreateActivation(rows, cols).value();
  EXPECT_TRUE(b.Write(v, 0, buf.get()).ok());
  return buf;
}

std::vector<float> ReadAll(Backend& b, const Buffer& buf) {
  std::vector<float> v(buf.rows() * buf.cols());
  EXPECT_TRUE(b.Read(buf, 0, absl::MakeSpan(v)).ok());
  return v;
}

TEST(CpuBackendTest, RegisteredAsCpu) {
  auto backend = CreateBackend("cpu", BackendOptions{});
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->name(), "cpu");
  auto missing = CreateBackend("nope", BackendOptions{});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("cpu"), std::string::npos);
}

class MatMulTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatMulTest, MatchesDequantizedReference) {
  const DType type = GetParam();
  // 9 blocks a row: a q4_0x8 group (AVX-512) and a plain tail block.
  const int64_t rows = 37, cols = 288;
  const std::vector<float> wf = Random(rows * cols, 1);
  std::vector<uint8_t> wq(*RowBytes(type, rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_TRUE(QuantizeRow(type, wf.data() + r * cols, cols,
                            wq.data() + r * *RowBytes(type, cols)).ok());
  }
  std::vector<float> wd(rows * cols);
  ASSERT_TRUE(DequantizeRow(type, wq.data(), rows * cols, wd.data()).ok());
  for (int threads : {1, 3}) {
    auto owned = CpuBackend::Create(BackendOptions{threads}).value();
    CpuBackend& b = *owned;
    auto w = b.CreateWeight(type, rows, cols, wq.data()).value();
    for (int64_t n : {1, 5}) {
      const std::vector<float> x = Random(n * cols, 2);
      auto xb = Act(b, n, cols, x);
      // Quantized weights see activations quantized to Q8_0 blocks.
      std::vector<float> xr = x;
      if (type == DType::kQ8_0 || type == DType::kQ4_0) {
        std::vector<cpu::ActBlockQ8> blocks(n * cols / kQK);
        cpu::ScalarKernels()->quantize_act_q8(x.data(), n * cols, blocks.data());
        for (size_t i = 0; i < xr.size(); ++i) xr[i] = blocks[i / kQK].d * blocks[i / kQK].qs[i % kQK];
      }
      auto out = b.CreateActivation(n, rows).value();
      ASSERT_TRUE(b.MatMul(*w, *xb, n, out.get()).ok());
      const std::vector<float> y = ReadAll(b, *out);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t r = 0; r < rows; ++r) {
          double ref = 0;
          for (int64_t c = 0; c < cols; ++c) ref += double(wd[r * cols + c]) * xr[i * cols + c];
          EXPECT_NEAR(y[i * rows + r], ref, 1e-4) << DTypeName(type) << " " << i << "," << r;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, MatMulTest,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0,
                                           DType::kQ4_0),
                         [](const auto& info) { return DTypeName(info.param); });

TEST(CpuBackendTest, ThreadCountDoesNotChangeBits) {
  const int64_t rows = 300, cols = 128, n = 4;
  const std::vector<float> w = Random(rows * cols, 3), x = Random(n * cols, 4);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 5}) {
    auto owned = CpuBackend::Create(BackendOptions{threads}).value();
    CpuBackend& b = *owned;
    auto wb = b.CreateWeight(DType::kF32, rows, cols, w.data()).value();
    auto xb = Act(b, n, cols, x);
    auto out = b.CreateActivation(n, rows).value();
    ASSERT_TRUE(b.MatMul(*wb, *xb, n, out.get()).ok());
    results.push_back(ReadAll(b, *out));
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

TEST(CpuBackendTest, RmsNorm) {
  auto owned = CpuBackend::Create(BackendOptions{2}).value();
  CpuBackend& b = *owned;
  const int64_t d = 10;
  const std::vector<float> x = Random(2 * d, 5), g = Random(d, 6);
  auto xb = Act(b, 2, d, x);
  auto gb = Act(b, 1, d, g);
  auto out = b.CreateActivation(2, d).value();
  ASSERT_TRUE(b.RmsNorm(*xb, *gb, 1e-5f, 2, out.get()).ok());
  const std::vector<float> y = ReadAll(b, *out);
  for (int i = 0; i < 2; ++i) {
    double ss = 0;
    for (int j = 0; j < d; ++j) ss += double(x[i * d + j]) * x[i * d + j];
    const double s = 1.0 / std::sqrt(ss / d + 1e-5);
    for (int j = 0; j < d; ++j) EXPECT_NEAR(y[i * d + j], x[i * d + j] * s * g[j], 1e-5);
  }
}

TEST(CpuBackendTest, RopeBothLayouts) {
  auto owned = CpuBackend::Create(BackendOptions{1}).value();
  CpuBackend& b = *owned;
  const int64_t heads = 2, hd = 8, rope_dim = 6;
  const std::vector<float> x = Random(2 * heads * hd, 7);
  for (RopeLayout layout : {RopeLayout::kInterleaved, RopeLayout::kNeox}) {
    auto xb = Act(b, 2, heads * hd, x);
    const std::vector<int32_t> pos = {0, 5};
    ASSERT_TRUE(b.Rope({heads, hd, rope_dim, 500.0, layout}, pos, xb.get()).ok());
    const std::vector<float> y = ReadAll(b, *xb);
    for (int i = 0; i < 2; ++i) {
      for (int h = 0; h < heads; ++h) {
        const float* in = x.data() + (i * heads + h) * hd;
        const float* out = y.data() + (i * heads + h) * hd;
        for (int k = 0; k < rope_dim / 2; ++k) {
          const int a = layout == RopeLayout::kInterleaved ? 2 * k : k;
          const int c = layout == RopeLayout::kInterleaved ? 2 * k + 1 : k + rope_dim / 2;
          const double angle = pos[i] * std::pow(500.0, -2.0 * k / rope_dim);
          EXPECT_NEAR(out[a], in[a] * std::cos(angle) - in[c] * std::sin(angle), 1e-5);
          EXPECT_NEAR(out[c], in[a] * std::sin(angle) + in[c] * std::cos(angle), 1e-5);
        }
        for (int k = rope_dim; k < hd; ++k) {
          if (layout == RopeLayout::kInterleaved) EXPECT_EQ(out[k], in[k]);
        }
      }
    }
  }
}

TEST(CpuBackendTest, GroupedQueryAttentionMatchesNaive) {
  auto owned = CpuBackend::Create(BackendOptions{2}).value();
  CpuBackend& b = *owned;
  const AttentionShape s{4, 2, 8};
  const int64_t len = 6;
  const std::vector<float> k = Random(len * s.n_kv_heads * s.head_dim, 8);
  const std::vector<float> v = Random(len * s.n_kv_heads * s.head_dim, 9);
  const std::vector<float> q = Random(2 * s.n_heads * s.head_dim, 10);
  auto kb = Act(b, len, s.n_kv_heads * s.head_dim, k);
  auto vb = Act(b, len, s.n_kv_heads * s.head_dim, v);
  auto qb = Act(b, 2, s.n_heads * s.head_dim, q);
  auto out = b.CreateActivation(2, s.n_heads * s.head_dim).value();
  const std::vector<int32_t> pos = {2, 5};
  ASSERT_TRUE(b.Attention(s, *qb, *kb, *vb, pos, out.get()).ok());
  const std::vector<float> y = ReadAll(b, *out);
  const int64_t kvd = s.n_kv_heads * s.head_dim;
  for (int i = 0; i < 2; ++i) {
    for (int h = 0; h < s.n_heads; ++h) {
      const int kvh = h / 2;
      std::vector<double> w(pos[i] + 1);
      double max = -1e300, sum = 0;
      for (int t = 0; t <= pos[i]; ++t) {
        double dot = 0;
        for (int d = 0; d < s.head_dim; ++d) {
          dot += double(q[(i * s.n_heads + h) * s.head_dim + d]) * k[t * kvd + kvh * s.head_dim + d];
        }
        w[t] = dot / std::sqrt(double(s.head_dim));
        max = std::max(max, w[t]);
      }
      for (double& x : w) sum += (x = std::exp(x - max));
      for (int d = 0; d < s.head_dim; ++d) {
        double ref = 0;
        for (int t = 0; t <= pos[i]; ++t) ref += w[t] / sum * v[t * kvd + kvh * s.head_dim + d];
        EXPECT_NEAR(y[(i * s.n_heads + h) * s.head_dim + d], ref, 1e-5);
      }
    }
  }
}

TEST(CpuBackendTest, ElementwiseAndEmbed) {
  auto owned = CpuBackend::Create(BackendOptions{1}).value();
  CpuBackend& b = *owned;
  const std::vector<float> g = {-1, 0, 2}, u = {3, 4, 5};
  auto gb = Act(b, 1, 3, g), ub = Act(b, 1, 3, u);
  auto out = b.CreateActivation(1, 3).value();
  ASSERT_TRUE(b.SiluMul(*gb, *ub, 1, out.get()).ok());
  std::vector<float> y = ReadAll(b, *out);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(y[j], g[j] / (1 + std::exp(-g[j])) * u[j], 1e-6);
  ASSERT_TRUE(b.Add(*ub, 1, out.get()).ok());
  y = ReadAll(b, *out);
  EXPECT_NEAR(y[2], 2 / (1 + std::exp(-2.0)) * 5 + 5, 1e-5);

  const std::vector<float> table = {0, 1, 10, 11, 20, 21};
  auto tb = b.CreateWeight(DType::kF32, 3, 2, table.data()).value();
  auto eb = b.CreateActivation(2, 2).value();
  const std::vector<int32_t> ids = {2, 0};
  ASSERT_TRUE(b.Embed(*tb, ids, eb.get()).ok());
  EXPECT_EQ(ReadAll(b, *eb), (std::vector<float>{20, 21, 0, 1}));
  const std::vector<int32_t> bad = {3};
  EXPECT_EQ(b.Embed(*tb, bad, eb.get()).code(), absl::StatusCode::kOutOfRange);
}

// Embedding rows of a q4_0 table, which the backend keeps repacked (tiles
// of 4 rows, then the last rows single): every row reads back as its plain
// blocks dequantize, for widths with and without a tail of blocks.
TEST(CpuBackendTest, EmbedReadsEveryRowOfARepackedQ4Table) {
  auto owned = CpuBackend::Create(BackendOptions{2}).value();
  CpuBackend& b = *owned;
  for (const int64_t cols : {int64_t{512}, int64_t{288}}) {
    const int64_t rows = 11;
    const std::vector<float> wf = Random(rows * cols, 31);
    const uint64_t row_bytes = *RowBytes(DType::kQ4_0, cols);
    std::vector<uint8_t> wq(rows * row_bytes);
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_TRUE(QuantizeRow(DType::kQ4_0, &wf[r * cols], cols, &wq[r * row_bytes]).ok());
    }
    auto table = b.CreateWeight(DType::kQ4_0, rows, cols, wq.data()).value();
    std::vector<int32_t> ids(rows);
    for (int32_t r = 0; r < rows; ++r) ids[r] = rows - 1 - r;
    auto out = b.CreateActivation(rows, cols).value();
    ASSERT_TRUE(b.Embed(*table, ids, out.get()).ok());
    const std::vector<float> got = ReadAll(b, *out);
    std::vector<float> want(cols);
    for (int64_t i = 0; i < rows; ++i) {
      ASSERT_TRUE(DequantizeRow(DType::kQ4_0, &wq[ids[i] * row_bytes], cols, want.data()).ok());
      for (int64_t c = 0; c < cols; ++c) {
        ASSERT_EQ(got[i * cols + c], want[c]) << "cols " << cols << " row " << ids[i] << " col " << c;
      }
    }
  }
}

TEST(CpuBackendTest, ShapeMismatchIsAnError) {
  auto owned = CpuBackend::Create(BackendOptions{1}).value();
  CpuBackend& b = *owned;
  const std::vector<float> w(12);
  auto wb = b.CreateWeight(DType::kF32, 3, 4, w.data()).value();
  auto x = b.CreateActivation(1, 5).value();
  auto out = b.CreateActivation(1, 3).value();
  EXPECT_EQ(b.MatMul(*wb, *x, 1, out.get()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(b.CreateWeight(DType::kQ4_1, 1, 32, w.data()).ok());
  EXPECT_FALSE(b.CreateWeight(DType::kQ8_0, 1, 33, w.data()).ok());
}

// MatMulFixed's totals are MatMul's exact results before FromFixed, and the
// totals of column slices (on block boundaries) add up to the whole row's.
TEST_P(MatMulTest, FixedTotalsMatchMatMulAndSplitOverColumns) {
  const DType type = GetParam();
  // 17 blocks, split 8 | 9: q4_0x8 groups with and without a tail.
  const int64_t rows = 19, cols = 544, n = 3, split = 256;
  const std::vector<float> wf = Random(rows * cols, 21);
  const uint64_t row_bytes = *RowBytes(type, cols);
  std::vector<uint8_t> wq(rows * row_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_TRUE(QuantizeRow(type, wf.data() + r * cols, cols, wq.data() + r * row_bytes).ok());
  }
  // The two column parts (split and cols - split wide) as separate matrices.
  const int64_t rest = cols - split;
  const uint64_t left_bytes = *RowBytes(type, split), right_bytes = *RowBytes(type, rest);
  std::vector<uint8_t> left(rows * left_bytes), right(rows * right_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(&left[r * left_bytes], &wq[r * row_bytes], left_bytes);
    std::memcpy(&right[r * right_bytes], &wq[r * row_bytes + left_bytes], right_bytes);
  }
  auto owned = CpuBackend::Create(BackendOptions{2}).value();
  CpuBackend& b = *owned;
  auto w = b.CreateWeight(type, rows, cols, wq.data()).value();
  auto wl = b.CreateWeight(type, rows, split, left.data()).value();
  auto wr = b.CreateWeight(type, rows, rest, right.data()).value();
  const std::vector<float> x = Random(n * cols, 22);
  std::vector<float> xl(n * split), xr(n * rest);
  for (int64_t i = 0; i < n; ++i) {
    std::copy(&x[i * cols], &x[i * cols + split], &xl[i * split]);
    std::copy(&x[i * cols + split], &x[(i + 1) * cols], &xr[i * rest]);
  }
  auto xb = Act(b, n, cols, x);
  auto xlb = Act(b, n, split, xl);
  auto xrb = Act(b, n, rest, xr);
  auto out = b.CreateActivation(n, rows).value();
  ASSERT_TRUE(b.MatMul(*w, *xb, n, out.get()).ok());
  const std::vector<float> y = ReadAll(b, *out);
  std::vector<int64_t> whole(n * rows), a(n * rows), c(n * rows);
  ASSERT_TRUE(b.MatMulFixed(*w, *xb, n, absl::MakeSpan(whole)).ok());
  ASSERT_TRUE(b.MatMulFixed(*wl, *xlb, n, absl::MakeSpan(a)).ok());
  ASSERT_TRUE(b.MatMulFixed(*wr, *xrb, n, absl::MakeSpan(c)).ok());
  for (int64_t j = 0; j < n * rows; ++j) {
    EXPECT_EQ(cpu::FromFixed(whole[j]), y[j]) << DTypeName(type) << " " << j;
    EXPECT_EQ(a[j] + c[j], whole[j]) << DTypeName(type) << " " << j;
  }
  std::vector<int64_t> small(n * rows - 1);
  EXPECT_FALSE(b.MatMulFixed(*w, *xb, n, absl::MakeSpan(small)).ok());
}

// A group of products of one input gives each product's MatMul bits, in
// both numerics and at any thread count: matrices whose row counts are not
// multiples of the 8-row split unit, one of them mixed in of another type
// (the group then runs product by product).
TEST_P(MatMulTest, GroupMatchesSeparateProducts) {
  const DType type = GetParam();
  const int64_t cols = 288, n = 3;
  const int64_t rows[] = {37, 8, 5, 64};
  std::vector<std::vector<uint8_t>> bytes;
  for (size_t m = 0; m < std::size(rows); ++m) {
    const std::vector<float> wf = Random(rows[m] * cols, 40 + m);
    const DType t = m == 3 ? DType::kF32 : type;
    const uint64_t row_bytes = *RowBytes(t, cols);
    bytes.emplace_back(rows[m] * row_bytes);
    for (int64_t r = 0; r < rows[m]; ++r) {
      ASSERT_TRUE(QuantizeRow(t, wf.data() + r * cols, cols, &bytes[m][r * row_bytes]).ok());
    }
  }
  const std::vector<float> x = Random(n * cols, 50);
  for (Numerics numerics : {Numerics::kExact, Numerics::kFast}) {
    for (int threads : {1, 2, 3}) {
      BackendOptions options{threads};
      options.numerics = numerics;
      auto owned = CpuBackend::Create(options).value();
      CpuBackend& b = *owned;
      auto xb = Act(b, n, cols, x);
      for (size_t count : {size_t{3}, size_t{4}}) {  // same type only; one f32 mixed in
        std::vector<std::unique_ptr<Buffer>> ws, grouped, alone;
        std::vector<const Buffer*> w_ptrs;
        std::vector<Buffer*> out_ptrs;
        for (size_t m = 0; m < count; ++m) {
          ws.push_back(b.CreateWeight(m == 3 ? DType::kF32 : type, rows[m], cols,
                                      bytes[m].data()).value());
          grouped.push_back(b.CreateActivation(n, rows[m]).value());
          alone.push_back(b.CreateActivation(n, rows[m]).value());
          w_ptrs.push_back(ws.back().get());
          out_ptrs.push_back(grouped.back().get());
        }
        ASSERT_TRUE(b.MatMulGroup(w_ptrs, *xb, n, out_ptrs).ok());
        for (size_t m = 0; m < count; ++m) {
          ASSERT_TRUE(b.MatMul(*ws[m], *xb, n, alone[m].get()).ok());
          EXPECT_EQ(ReadAll(b, *grouped[m]), ReadAll(b, *alone[m]))
              << DTypeName(type) << " matrix " << m << " of " << count << ", " << threads
              << " threads, " << (numerics == Numerics::kExact ? "exact" : "fast");
        }
      }
      // Spans of different sizes, and a wrong output shape, are errors.
      auto w0 = b.CreateWeight(type, rows[0], cols, bytes[0].data()).value();
      auto out0 = b.CreateActivation(n, rows[0]).value();
      auto bad = b.CreateActivation(n, rows[0] + 1).value();
      const Buffer* one[] = {w0.get(), w0.get()};
      Buffer* outs[] = {out0.get()};
      EXPECT_FALSE(b.MatMulGroup(one, *xb, n, outs).ok());
      Buffer* bad_outs[] = {out0.get(), bad.get()};
      EXPECT_FALSE(b.MatMulGroup(one, *xb, n, bad_outs).ok());
    }
  }
}

// Attention over a slice of the heads (q_head_offset, kv_head_offset, group)
// gives the same bits as those heads of the whole-model call.
TEST(CpuBackendTest, AttentionOverHeadSliceMatchesWhole) {
  auto owned = CpuBackend::Create(BackendOptions{2}).value();
  CpuBackend& b = *owned;
  const AttentionShape whole{8, 4, 8};
  const int64_t hd = whole.head_dim, len = 5, n = 2;
  const int64_t kvd = whole.n_kv_heads * hd, qd = whole.n_heads * hd;
  const std::vector<float> k = Random(len * kvd, 31), v = Random(len * kvd, 32);
  const std::vector<float> q = Random(n * qd, 33);
  const std::vector<int32_t> pos = {3, 4};
  auto out = b.CreateActivation(n, qd).value();
  ASSERT_TRUE(b.Attention(whole, *Act(b, n, qd, q), *Act(b, len, kvd, k), *Act(b, len, kvd, v),
                          pos, out.get()).ok());
  const std::vector<float> want = ReadAll(b, *out);
  // Query heads 3..5 use K/V heads 1..2 (group 2).
  AttentionShape s{3, 2, hd, 2, 3, 1};
  std::vector<float> qs(n * 3 * hd), ks(len * 2 * hd), vs(len * 2 * hd);
  for (int64_t i = 0; i < n; ++i) std::copy_n(&q[i * qd + 3 * hd], 3 * hd, &qs[i * 3 * hd]);
  for (int64_t t = 0; t < len; ++t) {
    std::copy_n(&k[t * kvd + hd], 2 * hd, &ks[t * 2 * hd]);
    std::copy_n(&v[t * kvd + hd], 2 * hd, &vs[t * 2 * hd]);
  }
  auto sout = b.CreateActivation(n, 3 * hd).value();
  ASSERT_TRUE(b.Attention(s, *Act(b, n, 3 * hd, qs), *Act(b, len, 2 * hd, ks),
                          *Act(b, len, 2 * hd, vs), pos, sout.get()).ok());
  const std::vector<float> got = ReadAll(b, *sout);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < 3 * hd; ++j) {
      EXPECT_EQ(got[i * 3 * hd + j], want[i * qd + 3 * hd + j]) << i << "," << j;
    }
  }
  // A head outside the K/V slice is an error.
  s.kv_head_offset = 2;
  EXPECT_FALSE(b.Attention(s, *Act(b, n, 3 * hd, qs), *Act(b, len, 2 * hd, ks),
                           *Act(b, len, 2 * hd, vs), pos, sout.get()).ok());
}

}  // namespace
}  // namespace shardlm
