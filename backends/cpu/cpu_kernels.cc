#include "backends/cpu/cpu_kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace shardlm::cpu {

float DotF32(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

namespace {

// Scores to probabilities in place (max, then std::exp and the sum in
// order t); returns 1 / sum.
float Softmax(float* scores, int64_t len) {
  float max = -INFINITY;
  for (int64_t t = 0; t < len; ++t) max = std::max(max, scores[t]);
  float sum = 0.0f;
  for (int64_t t = 0; t < len; ++t) {
    scores[t] = std::exp(scores[t] - max);
    sum += scores[t];
  }
  return 1.0f / sum;
}

void AttendHeadScalar(const float* q, const float* k, const float* v, int64_t stride, int64_t len,
                      int64_t hd, float scale, float* scores, float* out) {
  for (int64_t t = 0; t < len; ++t) scores[t] = DotF32(q, k + t * stride, hd) * scale;
  const float inv = Softmax(scores, len);
  std::fill(out, out + hd, 0.0f);
  for (int64_t t = 0; t < len; ++t) Axpy(scores[t] * inv, v + t * stride, out, hd);
}

// DotF32 for n a multiple of 8: the 8 lanes of one register, separate
// multiply and add (no FMA in this target), the same final pairing.
__attribute__((target("avx2"))) inline float Dot8Avx2(const float* a, const float* b,
                                                      int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  }
  // s = (a0 + a4, a1 + a5, a2 + a6, a3 + a7); ((s0 + s1) + (s2 + s3)).
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  const __m128 p = _mm_add_ps(s, _mm_shuffle_ps(s, s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehl_ps(p, p)));
}

// Dot8Avx2 of q against 4 rows b, b + stride, ..., interleaved (4
// independent add chains instead of one).
__attribute__((target("avx2"))) inline void Dot8x4Avx2(const float* q, const float* b,
                                                       int64_t stride, int64_t n, float scale,
                                                       float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(qv, _mm256_loadu_ps(b + r * stride + i)));
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    const __m128 s =
        _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps(acc[r], 1));
    const __m128 p = _mm_add_ps(s, _mm_shuffle_ps(s, s, _MM_SHUFFLE(2, 3, 0, 1)));
    out[r] = _mm_cvtss_f32(_mm_add_ss(p, _mm_movehl_ps(p, p))) * scale;
  }
}

// out = sum_t p_t * v_t with the HD / 8 registers of out kept live.
template <int HD>
__attribute__((target("avx2"))) inline void WeightedSumAvx2(const float* p, const float* v,
                                                            int64_t stride, int64_t len,
                                                            float inv, float* out) {
  __m256 o[HD / 8];
#pragma GCC unroll 16
  for (int j = 0; j < HD / 8; ++j) o[j] = _mm256_setzero_ps();
  for (int64_t t = 0; t < len; ++t) {
    const __m256 a = _mm256_set1_ps(p[t] * inv);
    const float* vt = v + t * stride;
#pragma GCC unroll 16
    for (int j = 0; j < HD / 8; ++j) {
      o[j] = _mm256_add_ps(o[j], _mm256_mul_ps(a, _mm256_loadu_ps(vt + 8 * j)));
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < HD / 8; ++j) _mm256_storeu_ps(out + 8 * j, o[j]);
}

// Any hd that is a multiple of 8: out in memory.
__attribute__((target("avx2"))) void WeightedSumAvx2Any(const float* p, const float* v,
                                                        int64_t stride, int64_t len, int64_t hd,
                                                        float inv, float* out) {
  std::fill(out, out + hd, 0.0f);
  for (int64_t t = 0; t < len; ++t) {
    const __m256 a = _mm256_set1_ps(p[t] * inv);
    const float* vt = v + t * stride;
    for (int64_t j = 0; j < hd; j += 8) {
      _mm256_storeu_ps(out + j, _mm256_add_ps(_mm256_loadu_ps(out + j),
                                              _mm256_mul_ps(a, _mm256_loadu_ps(vt + j))));
    }
  }
}

__attribute__((target("avx2"))) void AttendHeadAvx2(const float* q, const float* k,
                                                    const float* v, int64_t stride, int64_t len,
                                                    int64_t hd, float scale, float* scores,
                                                    float* out) {
  int64_t t = 0;
  for (; t + 4 <= len; t += 4) Dot8x4Avx2(q, k + t * stride, stride, hd, scale, scores + t);
  for (; t < len; ++t) scores[t] = Dot8Avx2(q, k + t * stride, hd) * scale;
  const float inv = Softmax(scores, len);
  if (hd == 64) return WeightedSumAvx2<64>(scores, v, stride, len, inv, out);
  if (hd == 128) return WeightedSumAvx2<128>(scores, v, stride, len, inv, out);
  WeightedSumAvx2Any(scores, v, stride, len, hd, inv, out);
}

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

}  // namespace

void AttendHead(const float* q, const float* k, const float* v, int64_t stride, int64_t len,
                int64_t hd, float scale, float* scores, float* out) {
  if (hd % 8 == 0 && HasAvx2()) {
    AttendHeadAvx2(q, k, v, stride, len, hd, scale, scores, out);
  } else {
    AttendHeadScalar(q, k, v, stride, len, hd, scale, scores, out);
  }
}

void RopeTables(double theta, int64_t rope_dim, const int32_t* positions, int64_t n,
                float* cos_t, float* sin_t) {
  const int64_t half = rope_dim / 2;
  std::vector<double> freq(half);
  for (int64_t k = 0; k < half; ++k) freq[k] = std::pow(theta, -2.0 * k / rope_dim);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < half; ++k) {
      const double angle = positions[i] * freq[k];
      cos_t[i * half + k] = static_cast<float>(std::cos(angle));
      sin_t[i * half + k] = static_cast<float>(std::sin(angle));
    }
  }
}

}  // namespace shardlm::cpu
