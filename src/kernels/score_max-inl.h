// The running row maximum of a score tile, taken from the Q·Kᵀ
// accumulators while they are still in registers: the online softmax then
// needs no pass over the stored scores to find it (that pass was ~1.7% of
// AVX-512 prefill at D64). Max is exact, so the row max is the same in
// whatever order the keys are taken (for NaN scores the row is NaN either
// way).

#if defined(SDPA_KERNELS_SCORE_MAX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_SCORE_MAX_INL_H_
#undef SDPA_KERNELS_SCORE_MAX_INL_H_
#else
#define SDPA_KERNELS_SCORE_MAX_INL_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The lane-wise maximum of the first kKeys of a0..a7 (the rest are
// ignored), as a tree: three levels of Max instead of a chain of seven.
template <int kKeys, class V>
HWY_INLINE V MaxOfKeys(V a0, V a1, V a2, V a3, V a4, V a5, V a6, V a7) {
  static_assert(1 <= kKeys && kKeys <= 8, "kKeys in [1, 8]");
  if constexpr (kKeys == 1) {
    return a0;
  } else if constexpr (kKeys == 2) {
    return hn::Max(a0, a1);
  } else if constexpr (kKeys == 3) {
    return hn::Max(hn::Max(a0, a1), a2);
  } else if constexpr (kKeys == 4) {
    return hn::Max(hn::Max(a0, a1), hn::Max(a2, a3));
  } else {
    return hn::Max(MaxOfKeys<4>(a0, a1, a2, a3, a3, a3, a3, a3),
                   MaxOfKeys<kKeys - 4>(a4, a5, a6, a7, a7, a7, a7, a7));
  }
}

// row_max[0, N) = max(row_max[0, N), v); row_max is vector-aligned.
template <class D, class V = hn::Vec<D>>
HWY_INLINE void AccumulateMax(D d, V v, float* HWY_RESTRICT row_max) {
  hn::Store(hn::Max(hn::Load(d, row_max), v), d, row_max);
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_SCORE_MAX_INL_H_
