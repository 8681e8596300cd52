#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "benchmarks/softmax_rows.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa_bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// See softmax_rows.h. Whole vectors use unaligned loads; the tail of fewer
// than one vector is scalar, so nothing is read or written past `count`.
void SoftmaxRowImpl(float* HWY_RESTRICT row, int64_t visible, int64_t count) {
  const hn::ScalableTag<float> d;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d));
  const int64_t whole = visible / n * n;
  std::fill(row + visible, row + count, 0.0f);
  if (visible == 0) return;

  auto vmax = hn::Set(d, row[0]);
  for (int64_t j = 0; j < whole; j += n) {
    vmax = hn::Max(vmax, hn::LoadU(d, row + j));
  }
  float max_score = hn::GetLane(hn::MaxOfLanes(d, vmax));
  for (int64_t j = whole; j < visible; ++j) {
    max_score = std::max(max_score, row[j]);
  }

  const auto vmax_score = hn::Set(d, max_score);
  auto vsum = hn::Zero(d);
  for (int64_t j = 0; j < whole; j += n) {
    const auto p = hn::Exp(d, hn::Sub(hn::LoadU(d, row + j), vmax_score));
    hn::StoreU(p, d, row + j);
    vsum = hn::Add(vsum, p);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  for (int64_t j = whole; j < visible; ++j) {
    row[j] = std::exp(row[j] - max_score);
    sum += row[j];
  }

  const float inverse = 1.0f / sum;
  const auto vinverse = hn::Set(d, inverse);
  for (int64_t j = 0; j < whole; j += n) {
    hn::StoreU(hn::Mul(hn::LoadU(d, row + j), vinverse), d, row + j);
  }
  for (int64_t j = whole; j < visible; ++j) row[j] *= inverse;
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa_bench
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "benchmarks/softmax_rows.h"

namespace sdpa_bench {

HWY_EXPORT(SoftmaxRowImpl);

void SoftmaxRow(float* row, int64_t visible, int64_t count) {
  HWY_DYNAMIC_DISPATCH(SoftmaxRowImpl)(row, visible, count);
}

}  // namespace sdpa_bench
#endif  // HWY_ONCE
