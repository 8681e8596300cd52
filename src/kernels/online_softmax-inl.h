// The online-softmax step for one score tile S[key][row] (rows in lanes):
// hides what the causal/window rules and the mask remove, updates the running
// row max m and row sum l, turns S into P = 2^(S - m) in place, and leaves
// alpha = 2^(m_old - m_new), the factor the P·V kernel rescales O by.
// Scores are in the log2 domain: Q was pre-multiplied by scale·log2(e).

#if defined(SDPA_KERNELS_ONLINE_SOFTMAX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_ONLINE_SOFTMAX_INL_H_
#undef SDPA_KERNELS_ONLINE_SOFTMAX_INL_H_
#else
#define SDPA_KERNELS_ONLINE_SOFTMAX_INL_H_
#endif

#include <hwy/highway.h>
#include <stddef.h>

#include <limits>

#include "src/kernels/exp2-inl.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// What removes keys from a tile. Every pointer may be null (nothing of that
// kind applies).
struct TileMasks {
  // Key kk is visible to lane r iff first[r] <= kk <= last[r] (floats holding
  // small integers, relative to the tile's first key).
  const float* first = nullptr;
  const float* last = nullptr;
  // Additive log2-domain mask, per lane: mask_tile[kk * rt + r]; or the same
  // for every lane: mask_row[kk]. -inf removes the key outright, even where
  // the score is NaN.
  const float* mask_tile = nullptr;
  const float* mask_row = nullptr;
};

template <class D>
HWY_INLINE void OnlineSoftmaxTile(D d, float* HWY_RESTRICT s, size_t rt,
                                  size_t num_keys, const TileMasks& masks,
                                  float* HWY_RESTRICT m, float* HWY_RESTRICT l,
                                  float* HWY_RESTRICT alpha) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  const bool any_mask = masks.first != nullptr || masks.mask_tile != nullptr ||
                        masks.mask_row != nullptr;
  for (size_t lane0 = 0; lane0 < rt; lane0 += N) {
    float* HWY_RESTRICT col = s + lane0;
    V block_max = neg_inf;
    if (any_mask) {
      const V first = masks.first ? hn::Load(d, masks.first + lane0) : neg_inf;
      const V last = masks.last ? hn::Load(d, masks.last + lane0) : neg_inf;
      for (size_t kk = 0; kk < num_keys; ++kk) {
        V x = hn::Load(d, col + kk * rt);
        if (masks.first != nullptr) {
          const V key = hn::Set(d, static_cast<float>(kk));
          x = hn::IfThenElse(hn::And(hn::Le(first, key), hn::Le(key, last)), x,
                             neg_inf);
        }
        if (masks.mask_tile != nullptr || masks.mask_row != nullptr) {
          const V add = masks.mask_tile
                            ? hn::Load(d, masks.mask_tile + kk * rt + lane0)
                            : hn::Set(d, masks.mask_row[kk]);
          x = hn::IfThenElse(hn::Eq(add, neg_inf), neg_inf, hn::Add(x, add));
        }
        hn::Store(x, d, col + kk * rt);
        block_max = hn::Max(block_max, x);
      }
    } else {
      for (size_t kk = 0; kk < num_keys; ++kk) {
        block_max = hn::Max(block_max, hn::Load(d, col + kk * rt));
      }
    }
    const V m_old = hn::Load(d, m + lane0);
    const V m_new = hn::Max(m_old, block_max);
    // A row that has seen no key yet keeps m = -inf; subtracting 0 instead
    // keeps its P (and alpha) exactly 0 rather than NaN.
    const V m_use = hn::IfThenZeroElse(hn::Eq(m_new, neg_inf), m_new);
    const V scale = FastExp2(d, hn::Sub(m_old, m_use));
    V sum = hn::Zero(d);
    for (size_t kk = 0; kk < num_keys; ++kk) {
      const V p = FastExp2(d, hn::Sub(hn::Load(d, col + kk * rt), m_use));
      hn::Store(p, d, col + kk * rt);
      sum = hn::Add(sum, p);
    }
    hn::Store(m_new, d, m + lane0);
    hn::Store(hn::MulAdd(hn::Load(d, l + lane0), scale, sum), d, l + lane0);
    hn::Store(scale, d, alpha + lane0);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_ONLINE_SOFTMAX_INL_H_
