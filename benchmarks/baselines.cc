#include "benchmarks/baselines.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "benchmarks/softmax_rows.h"

#if defined(SDPA_BENCH_HAVE_OPENBLAS)
#include <cblas.h>
#endif

namespace sdpa_bench {
#if defined(SDPA_BENCH_HAVE_OPENBLAS)

namespace {

// One arena per thread count, created on first use and kept: creating an
// arena per call would cost more than the softmax of a small head.
tbb::task_arena& ArenaFor(int threads) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<tbb::task_arena>> arenas;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<tbb::task_arena>& arena = arenas[threads];
  if (arena == nullptr) arena = std::make_unique<tbb::task_arena>(threads);
  return *arena;
}

}  // namespace

bool HaveOpenBlas() { return true; }

const char* OpenBlasCoreName() { return openblas_get_corename(); }

void UnfusedBlasAttention(Inputs* inputs, int threads, FloatBuffer* scores) {
  const Shape& s = inputs->shape;
  static int blas_threads = 0;
  if (blas_threads != threads) {
    openblas_set_num_threads(threads);
    blas_threads = threads;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int64_t group = s.q_heads / s.kv_heads;
  float* const p = scores->data();
  auto softmax_rows = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      SoftmaxRow(p + i * s.kv_len, VisibleKeys(s, i), s.kv_len);
    }
  };
  for (int64_t bh = 0; bh < s.batch * s.q_heads; ++bh) {
    const int64_t b = bh / s.q_heads;
    const int64_t kv = b * s.kv_heads + (bh % s.q_heads) / group;
    const float* q = inputs->q.data() + bh * s.q_len * s.head_dim;
    const float* k = inputs->k.data() + kv * s.kv_len * s.head_dim;
    const float* v = inputs->v.data() + kv * s.kv_len * s.value_dim;
    float* out = inputs->out.data() + bh * s.q_len * s.value_dim;
    // S[Tq x Tk] = scale * Q[Tq x Dk] * K[Tk x Dk]^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.q_len, s.kv_len,
                s.head_dim, scale, q, s.head_dim, k, s.head_dim, 0.0f, p,
                s.kv_len);
    if (threads == 1) {
      softmax_rows(0, s.q_len);
    } else {
      ArenaFor(threads).execute([&] {
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, s.q_len, 16),
                          [&](const tbb::blocked_range<int64_t>& rows) {
                            softmax_rows(rows.begin(), rows.end());
                          });
      });
    }
    // O[Tq x Dv] = P[Tq x Tk] * V[Tk x Dv]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.q_len, s.value_dim,
                s.kv_len, 1.0f, p, s.kv_len, v, s.value_dim, 0.0f, out,
                s.value_dim);
  }
}

#else  // !SDPA_BENCH_HAVE_OPENBLAS

bool HaveOpenBlas() { return false; }

const char* OpenBlasCoreName() { return "none"; }

void UnfusedBlasAttention(Inputs*, int, FloatBuffer*) {}

#endif  // SDPA_BENCH_HAVE_OPENBLAS

void NaiveAttention(Inputs* inputs) {
  const Shape& s = inputs->shape;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int64_t group = s.q_heads / s.kv_heads;
  std::vector<float> scores(s.kv_len);
  for (int64_t bh = 0; bh < s.batch * s.q_heads; ++bh) {
    const int64_t b = bh / s.q_heads;
    const int64_t kv = b * s.kv_heads + (bh % s.q_heads) / group;
    const float* k = inputs->k.data() + kv * s.kv_len * s.head_dim;
    const float* v = inputs->v.data() + kv * s.kv_len * s.value_dim;
    for (int64_t i = 0; i < s.q_len; ++i) {
      const float* q = inputs->q.data() + (bh * s.q_len + i) * s.head_dim;
      float* out = inputs->out.data() + (bh * s.q_len + i) * s.value_dim;
      const int64_t visible = VisibleKeys(s, i);
      float max_score = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < visible; ++j) {
        float dot = 0.0f;
        for (int64_t d = 0; d < s.head_dim; ++d) {
          dot += q[d] * k[j * s.head_dim + d];
        }
        scores[j] = dot * scale;
        max_score = std::max(max_score, scores[j]);
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < visible; ++j) {
        scores[j] = std::exp(scores[j] - max_score);
        sum += scores[j];
      }
      std::fill(out, out + s.value_dim, 0.0f);
      for (int64_t j = 0; j < visible; ++j) {
        const float p = scores[j] / sum;
        for (int64_t d = 0; d < s.value_dim; ++d) {
          out[d] += p * v[j * s.value_dim + d];
        }
      }
    }
  }
}

}  // namespace sdpa_bench
