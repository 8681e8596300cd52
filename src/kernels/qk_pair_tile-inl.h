// Q·Kᵀ for SSSE3/SSE4, which have no FMA and no broadcast load: the
// rows-in-lanes tile (QkLanesTile) pays movss + shufps for every K element,
// and the shuffle competes with mulps/addps for the FP pipes. Here each
// vector holds two query rows x two consecutive head-dim elements,
//   [q[r][e], q[r][e+1], q[r+1][e], q[r+1][e+1]],
// so a K pair is broadcast with movddup, a plain load. Each lane then sums
// every other element; one haddps per pair of vectors at the end of the
// tile leaves the scores in the usual S[key][row] layout. Measured in a
// standalone loop (one core, D128, 16 rows x 3 keys, data in L1/L2): 52
// GFLOP/s with QkLanesTile, 62.5 this way, of a mulps + addps peak of 68.
//
// Q is packed paired: element e of tile row r at
// qp[(e / 2) * 2 * rt + 2 * r + e % 2] (QueryPackOffset), zero past dim.

#if defined(SDPA_KERNELS_QK_PAIR_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_QK_PAIR_TILE_INL_H_
#undef SDPA_KERNELS_QK_PAIR_TILE_INL_H_
#else
#define SDPA_KERNELS_QK_PAIR_TILE_INL_H_
#endif

#include <hwy/highway.h>
#include <stddef.h>
#include <string.h>

#include "src/kernels/row_stream.h"
#include "src/kernels/score_max-inl.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_SSE4
constexpr bool kPairedQueries = true;

// [p[0], p[1], p[0], p[1]] by movddup from memory (SSE3).
HWY_INLINE hn::Vec128<float> LoadPairDup(const float* HWY_RESTRICT p) {
  double pair;
  memcpy(&pair, p, sizeof(pair));
  return hn::Vec128<float>{_mm_castpd_ps(_mm_loaddup_pd(&pair))};
}

// b * q[0..3] by mulps with a memory operand (see QkPairTile).
HWY_INLINE hn::Vec128<float> MulByMemory(hn::Vec128<float> b,
                                         const float* HWY_RESTRICT q) {
  asm("mulps %1, %0" : "+x"(b.raw) : "m"(*reinterpret_cast<const __m128*>(q)));
  return b;
}

// [a0 + a1, a2 + a3, b0 + b1, b2 + b3] (haddps, SSE3).
HWY_INLINE hn::Vec128<float> PairSums(hn::Vec128<float> a,
                                      hn::Vec128<float> b) {
  return hn::Vec128<float>{_mm_hadd_ps(a.raw, b.raw)};
}

// s[kk * rt + 2 * v + i] (i < 2, v < kPairVecs) = scores of rows 2v, 2v+1
// of qp against key kk < kKeys; rows of k hold `dim` floats (never read
// past them). Prefetches `ahead` and takes the row maximum into s_max (may
// be null) as QkLanesTile does.
template <int kPairVecs, int kKeys>
HWY_INLINE void QkPairTile(const float* HWY_RESTRICT qp, size_t rt, size_t dim,
                           const float* HWY_RESTRICT k, ptrdiff_t k_row_stride,
                           float* HWY_RESTRICT s, float* HWY_RESTRICT s_max,
                           const RowStream* ahead, size_t num_ahead,
                           size_t ahead_row) {
  static_assert(kPairVecs == 2 || kPairVecs == 4 || kPairVecs == 6,
                "kPairVecs in {2, 4, 6}: whole vectors of rows");
  static_assert(1 <= kKeys && kKeys <= 6, "kKeys in [1, 6]");
  const hn::Full128<float> d;
  using V = hn::Vec128<float>;
  const auto k_rows = RowPointers<kKeys, 6>(k, k_row_stride);
#define SDPA_QKP_DECLARE(kk)                                          \
  V c##kk##0 = hn::Zero(d), c##kk##1 = c##kk##0, c##kk##2 = c##kk##0, \
    c##kk##3 = c##kk##0, c##kk##4 = c##kk##0, c##kk##5 = c##kk##0;
  SDPA_QKP_DECLARE(0)
  SDPA_QKP_DECLARE(1)
  SDPA_QKP_DECLARE(2)
  SDPA_QKP_DECLARE(3)
  SDPA_QKP_DECLARE(4)
  SDPA_QKP_DECLARE(5)
#undef SDPA_QKP_DECLARE
// 12 accumulators, a K pair and a temporary leave room for two Q vectors
// in registers; the others are read by mulps from memory. Left to itself,
// GCC at times loaded all of Q and kept two accumulators on the stack, a
// load-add-store chain every step (Q·Kᵀ + softmax 64% slower, depending on
// unrelated code elsewhere in the file); an asm memory operand cannot be
// hoisted into a register.
#define SDPA_QKP_ACC_REG(kk, v) c##kk##v = hn::MulAdd(q##v, b, c##kk##v);
#define SDPA_QKP_ACC_MEM(kk, v) \
  c##kk##v = hn::Add(MulByMemory(b, qe + 4 * v), c##kk##v);
#define SDPA_QKP_STEP(kk, b_of)                          \
  if constexpr (kKeys > kk) {                            \
    const V b = b_of(k_rows[kk] + e);                    \
    SDPA_QKP_ACC_REG(kk, 0)                              \
    SDPA_QKP_ACC_REG(kk, 1)                              \
    if constexpr (kPairVecs > 2) SDPA_QKP_ACC_MEM(kk, 2) \
    if constexpr (kPairVecs > 2) SDPA_QKP_ACC_MEM(kk, 3) \
    if constexpr (kPairVecs > 4) SDPA_QKP_ACC_MEM(kk, 4) \
    if constexpr (kPairVecs > 4) SDPA_QKP_ACC_MEM(kk, 5) \
  }
#define SDPA_QKP_ALL_KEYS(b_of)                                \
  {                                                            \
    const float* HWY_RESTRICT qe = qp + e * rt; /* pair e/2 */ \
    const V q0 = hn::Load(d, qe);                              \
    const V q1 = hn::Load(d, qe + 4);                          \
    SDPA_QKP_STEP(0, b_of)                                     \
    SDPA_QKP_STEP(1, b_of)                                     \
    SDPA_QKP_STEP(2, b_of)                                     \
    SDPA_QKP_STEP(3, b_of)                                     \
    SDPA_QKP_STEP(4, b_of)                                     \
    SDPA_QKP_STEP(5, b_of)                                     \
  }
  size_t e = 0;
  for (; e + 2 <= dim; e += 2) {
    if (num_ahead != 0 && e % kFloatsPerLine == 0) {
      for (size_t i = 0; i < num_ahead; ++i) {
        PrefetchRowsLine(ahead[i], ahead_row, kKeys, e);
      }
    }
    SDPA_QKP_ALL_KEYS(LoadPairDup)
  }
  if (e < dim) {  // odd dim: the last element, paired with Q's zero
    // [k, 0, k, 0]: Q's zero padding must meet 0, not k (0 * Inf is NaN).
    // movss zeroes the upper lanes, so no zero register is taken (one
    // spilled accumulators: codegen_accumulator_spills).
    const auto load_one = [](const float* p) {
      const __m128 one = _mm_load_ss(p);
      return V{_mm_movelh_ps(one, one)};
    };
    SDPA_QKP_ALL_KEYS(load_one)
  }
#undef SDPA_QKP_ALL_KEYS
#undef SDPA_QKP_STEP
#undef SDPA_QKP_ACC_MEM
#undef SDPA_QKP_ACC_REG
// Scores of key kk, rows 4v..4v+3: r<kk><v> (unused ones are dead code).
#define SDPA_QKP_SUMS(kk)                                                     \
  const V r##kk##0 = PairSums(c##kk##0, c##kk##1);                            \
  const V r##kk##1 = kPairVecs > 2 ? PairSums(c##kk##2, c##kk##3) : r##kk##0; \
  const V r##kk##2 = kPairVecs > 4 ? PairSums(c##kk##4, c##kk##5) : r##kk##0;
  SDPA_QKP_SUMS(0)
  SDPA_QKP_SUMS(1)
  SDPA_QKP_SUMS(2)
  SDPA_QKP_SUMS(3)
  SDPA_QKP_SUMS(4)
  SDPA_QKP_SUMS(5)
#undef SDPA_QKP_SUMS
#define SDPA_QKP_STORE(kk)                                       \
  if constexpr (kKeys > kk) {                                    \
    float* HWY_RESTRICT sk = s + kk * rt;                        \
    hn::Store(r##kk##0, d, sk);                                  \
    if constexpr (kPairVecs > 2) hn::Store(r##kk##1, d, sk + 4); \
    if constexpr (kPairVecs > 4) hn::Store(r##kk##2, d, sk + 8); \
  }
  SDPA_QKP_STORE(0)
  SDPA_QKP_STORE(1)
  SDPA_QKP_STORE(2)
  SDPA_QKP_STORE(3)
  SDPA_QKP_STORE(4)
  SDPA_QKP_STORE(5)
#undef SDPA_QKP_STORE
  if (s_max != nullptr) {
#define SDPA_QKP_MAX(v)                                                      \
  if constexpr (kPairVecs > 2 * v) {                                         \
    AccumulateMax(d,                                                         \
                  MaxOfKeys<kKeys>(r0##v, r1##v, r2##v, r3##v, r4##v, r5##v, \
                                   r5##v, r5##v),                            \
                  s_max + 4 * v);                                            \
  }
    SDPA_QKP_MAX(0)
    SDPA_QKP_MAX(1)
    SDPA_QKP_MAX(2)
#undef SDPA_QKP_MAX
  }
}

// A tile of kQVecs * 4 rows: 8-row passes (4 vectors, 12 accumulators with
// three keys) and a 4-row pass for an odd kQVecs, or one pass of 12 rows.
// Only the first pass prefetches.
template <int kQVecs, int kKeys>
HWY_INLINE void QkPairRows(const float* HWY_RESTRICT qp, size_t rt, size_t dim,
                           const float* HWY_RESTRICT k, ptrdiff_t k_row_stride,
                           float* HWY_RESTRICT s, float* HWY_RESTRICT s_max,
                           const RowStream* ahead, size_t num_ahead,
                           size_t ahead_row) {
  if constexpr (kQVecs == 3) {
    QkPairTile<6, kKeys>(qp, rt, dim, k, k_row_stride, s, s_max, ahead,
                         num_ahead, ahead_row);
  } else {
    constexpr int kPairVecs = 2 * kQVecs;
    int v = 0;
    for (; v + 4 <= kPairVecs; v += 4) {
      QkPairTile<4, kKeys>(qp + 4 * v, rt, dim, k, k_row_stride, s + 2 * v,
                           s_max ? s_max + 2 * v : nullptr, ahead,
                           v == 0 ? num_ahead : 0, ahead_row);
    }
    if constexpr (kPairVecs % 4 != 0) {
      QkPairTile<2, kKeys>(qp + 4 * v, rt, dim, k, k_row_stride, s + 2 * v,
                           s_max ? s_max + 2 * v : nullptr, ahead,
                           v == 0 ? num_ahead : 0, ahead_row);
    }
  }
}

#else
constexpr bool kPairedQueries = false;
#endif

// Keys per QkPairRows tile for q_vecs vectors of rows: 12 accumulators a
// pass (6 in the 4-row pass of an odd count above 3).
constexpr int PairedKeysFor(int q_vecs) {
  return q_vecs == 1 ? 6 : q_vecs == 3 ? 2 : 3;
}

// Where element e of tile row `lane` goes in the packed Q tile: qt[e][row],
// or paired (above).
HWY_INLINE size_t QueryPackOffset(size_t e, size_t lane, size_t rt) {
  return kPairedQueries ? (e / 2) * 2 * rt + 2 * lane + e % 2 : e * rt + lane;
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_QK_PAIR_TILE_INL_H_
