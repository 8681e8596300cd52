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

// What removes keys from a tile, and how its scores are scaled. Every
// pointer may be null (nothing of that kind applies).
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
  // When Q could not be pre-scaled without overflowing: scores are
  // multiplied by score_scale, then by log2(e).
  bool scale_scores = false;
  float score_scale = 1.0f;

  // Whether the scores change after Q·Kᵀ (hidden keys, a mask, scaling):
  // then the softmax takes the row max itself, after applying them.
  bool ChangesScores() const {
    return first != nullptr || mask_tile != nullptr || mask_row != nullptr ||
           scale_scores;
  }
};

// Lanes of key kk that no rule or mask removes; `first`/`last` are the
// loaded masks.first/last of lanes [lane0, lane0 + N).
template <class D, class V = hn::Vec<D>>
HWY_INLINE hn::Mask<D> KeptLanes(D d, const TileMasks& masks, size_t rt,
                                 size_t lane0, size_t kk, V first, V last) {
  auto kept = hn::Eq(hn::Zero(d), hn::Zero(d));  // all lanes
  if (masks.mask_tile != nullptr || masks.mask_row != nullptr) {
    const V add = masks.mask_tile
                      ? hn::Load(d, masks.mask_tile + kk * rt + lane0)
                      : hn::Set(d, masks.mask_row[kk]);
    // Not(Eq), not Ne: x86's Ne is false for a NaN lane, and a NaN mask
    // value must keep the key (and poison the row).
    kept = hn::Not(
        hn::Eq(add, hn::Set(d, -std::numeric_limits<float>::infinity())));
  }
  if (masks.first != nullptr) {
    const V key = hn::Set(d, static_cast<float>(kk));
    kept = hn::And(kept, hn::And(hn::Le(first, key), hn::Le(key, last)));
  }
  return kept;
}

// seen[r] becomes 1 once lane r has had a key that no rule or mask removed:
// a row whose visible scores are all -inf (Inf in Q or K) is then NaN, as in
// IEEE softmax, while a row that sees no key is 0.
// P is 2^(S - m - weight_bias): a positive bias keeps P, l and O·l far from
// overflow (see TaskRunner::Run); m, alpha and l·2^bias are unaffected.
// Lanes [0, width) (a multiple of N, <= rt) are updated; the rest are left.
// s_max (null where masks.ChangesScores()): each lane's maximum score,
// already known (QkForTile).
template <class D>
HWY_INLINE void OnlineSoftmaxTile(
    D d, float* HWY_RESTRICT s, size_t rt, size_t width, size_t num_keys,
    const TileMasks& masks, const float* HWY_RESTRICT s_max, float weight_bias,
    float* HWY_RESTRICT m, float* HWY_RESTRICT l, float* HWY_RESTRICT alpha,
    float* HWY_RESTRICT seen) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  const V one = hn::Set(d, 1.0f);
  const V zero = hn::Zero(d);
  const bool has_mask = masks.mask_tile != nullptr || masks.mask_row != nullptr;
  const bool any_fixup = masks.ChangesScores();
  HWY_DASSERT(s_max == nullptr || !any_fixup);
  for (size_t lane0 = 0; lane0 < width; lane0 += N) {
    float* HWY_RESTRICT col = s + lane0;
    V block_max = neg_inf;
    V seen_lanes = num_keys > 0 ? one : hn::Load(d, seen + lane0);
    if (any_fixup) {
      seen_lanes = hn::Load(d, seen + lane0);
      const V first = masks.first ? hn::Load(d, masks.first + lane0) : zero;
      const V last = masks.last ? hn::Load(d, masks.last + lane0) : zero;
      const V score_scale = hn::Set(d, masks.score_scale);
      const V log2e = hn::Set(d, 1.44269504088896340736f);
      for (size_t kk = 0; kk < num_keys; ++kk) {
        V x = hn::Load(d, col + kk * rt);
        if (masks.scale_scores) x = hn::Mul(hn::Mul(x, score_scale), log2e);
        if (has_mask) {
          x = hn::Add(x, masks.mask_tile
                             ? hn::Load(d, masks.mask_tile + kk * rt + lane0)
                             : hn::Set(d, masks.mask_row[kk]));
        }
        // A hidden key ends at -inf whatever its mask value or score
        // (-inf + inf or a NaN score would otherwise reach the row).
        const auto kept = KeptLanes(d, masks, rt, lane0, kk, first, last);
        x = hn::IfThenElse(kept, x, neg_inf);
        hn::Store(x, d, col + kk * rt);
        block_max = hn::Max(block_max, x);
        seen_lanes = hn::IfThenElse(kept, one, seen_lanes);
      }
    } else if (s_max != nullptr) {
      block_max = hn::Load(d, s_max + lane0);
    } else {
      // Four running maxima: one would wait on Max's latency every key.
      V max1 = neg_inf, max2 = neg_inf, max3 = neg_inf;
      size_t kk = 0;
      for (; kk + 4 <= num_keys; kk += 4) {
        block_max = hn::Max(block_max, hn::Load(d, col + kk * rt));
        max1 = hn::Max(max1, hn::Load(d, col + (kk + 1) * rt));
        max2 = hn::Max(max2, hn::Load(d, col + (kk + 2) * rt));
        max3 = hn::Max(max3, hn::Load(d, col + (kk + 3) * rt));
      }
      for (; kk < num_keys; ++kk) {
        block_max = hn::Max(block_max, hn::Load(d, col + kk * rt));
      }
      block_max = hn::Max(hn::Max(block_max, max1), hn::Max(max2, max3));
    }
    hn::Store(seen_lanes, d, seen + lane0);
    const V m_old = hn::Load(d, m + lane0);
    const V m_new = hn::Max(m_old, block_max);
    // A row that has seen no finite score yet keeps m = -inf; subtracting 0
    // instead keeps its P (and alpha) exactly 0 rather than NaN.
    const V m_use = hn::IfThenZeroElse(hn::Eq(m_new, neg_inf), m_new);
    const V scale = FastExp2(d, hn::Sub(m_old, m_use));
    const V m_weights = hn::Add(m_use, hn::Set(d, weight_bias));
    V sum = hn::Zero(d);
    for (size_t kk = 0; kk < num_keys; ++kk) {
      const V p = FastExp2(d, hn::Sub(hn::Load(d, col + kk * rt), m_weights));
      hn::Store(p, d, col + kk * rt);
      sum = hn::Add(sum, p);
    }
    hn::Store(m_new, d, m + lane0);
    hn::Store(hn::MulAdd(hn::Load(d, l + lane0), scale, sum), d, l + lane0);
    hn::Store(scale, d, alpha + lane0);
  }
}

// For P·V with kSkipZeros: P of every key a rule or mask removed from a lane
// (0 there) becomes -0.0, so that hidden keys are skipped while a visible
// key of weight +0 still contributes 0 * V (NaN for an infinite V element,
// as in IEEE arithmetic and the reference).
template <class D>
HWY_INLINE void MarkHiddenKeys(D d, float* HWY_RESTRICT p, size_t rt,
                               size_t width, size_t num_keys,
                               const TileMasks& masks) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V neg_zero = hn::Set(d, -0.0f);
  for (size_t lane0 = 0; lane0 < width; lane0 += N) {
    float* HWY_RESTRICT col = p + lane0;
    const V first = masks.first ? hn::Load(d, masks.first + lane0) : neg_zero;
    const V last = masks.last ? hn::Load(d, masks.last + lane0) : neg_zero;
    for (size_t kk = 0; kk < num_keys; ++kk) {
      const auto kept = KeptLanes(d, masks, rt, lane0, kk, first, last);
      hn::Store(hn::IfThenElse(kept, hn::Load(d, col + kk * rt), neg_zero), d,
                col + kk * rt);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_ONLINE_SOFTMAX_INL_H_
