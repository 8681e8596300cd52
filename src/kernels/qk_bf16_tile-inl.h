// Q·Kᵀ on BF16 dot products (vdpbf16ps, bf16_dot-inl.h) for BF16 Q and K.
//
// The form is QkLanesTile's (qk_tile-inl.h), rows in lanes, S[key][row]:
// Q is packed transposed in pairs, qp[p][row] = {q[row][2p], q[row][2p+1]}
// as two BF16 in one 32-bit lane, and each K pair is one 32-bit broadcast
// straight from the caller's BF16 rows. The products of BF16 numbers are
// exact in f32 and the sums are f32 additions, so the scores are as exact
// as the f32 path's; BF16 subnormals count as 0 (the instruction's rule).
// Q carries a power of two of the score scale (exact), the accumulators the
// rest, in [1, 2): an accumulator overflows only where the scaled score
// would. The tile stores scaled scores (log2 domain) as the f32 tiles do.

#if defined(SDPA_KERNELS_QK_BF16_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_QK_BF16_TILE_INL_H_
#undef SDPA_KERNELS_QK_BF16_TILE_INL_H_
#else
#define SDPA_KERNELS_QK_BF16_TILE_INL_H_
#endif

#include <hwy/highway.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "src/kernels/bf16_dot-inl.h"
#include "src/kernels/qk_tile-inl.h"
#include "src/kernels/row_stream.h"
#include "src/kernels/score_max-inl.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL

// s[kk * rt + lane] = score_scale * sum_p Dot(qp[p * rt + lane], k pair p of
// row kk) for kk < kKeys and lane < 16 * kQVecs; `pairs` head-dim pairs.
// qp is 64-byte aligned. With s_max != nullptr, s_max[lane] = max(s_max
// [lane], the lane's kKeys scores). With ahead != nullptr, rows
// [ahead_row, ahead_row + kKeys) of K are prefetched a line of each row
// whenever the tile enters a new line of its own rows.
template <int kQVecs, int kKeys>
HWY_INLINE SDPA_BF16_DOT_ATTR void QkBf16Tile(
    const uint32_t* HWY_RESTRICT qp, size_t rt, size_t pairs,
    const uint16_t* HWY_RESTRICT k, ptrdiff_t k_row_stride, __m512 score_scale,
    float* HWY_RESTRICT s, float* HWY_RESTRICT s_max,
    const RowStreamOf<uint16_t>* ahead, size_t ahead_row) {
  static_assert(1 <= kQVecs && kQVecs <= 3, "kQVecs in [1, 3]");
  static_assert(1 <= kKeys && kKeys <= 8, "kKeys in [1, 8]");
  constexpr size_t N = 16;
  const uint16_t* k_rows[8];
  for (int i = 0; i < 8; ++i)
    k_rows[i] = k + (i < kKeys ? i : 0) * k_row_stride;
#define SDPA_QKB_DECLARE(kk)                                  \
  __m512 c##kk##0 = _mm512_setzero_ps(), c##kk##1 = c##kk##0, \
         c##kk##2 = c##kk##0;
  SDPA_QKB_DECLARE(0)
  SDPA_QKB_DECLARE(1)
  SDPA_QKB_DECLARE(2)
  SDPA_QKB_DECLARE(3)
  SDPA_QKB_DECLARE(4)
  SDPA_QKB_DECLARE(5)
  SDPA_QKB_DECLARE(6)
  SDPA_QKB_DECLARE(7)
#undef SDPA_QKB_DECLARE
  constexpr size_t kPairsPerLine = kElemsPerLine<uint16_t> / 2;
  for (size_t p = 0; p < pairs; ++p) {
    if (ahead != nullptr && p % kPairsPerLine == 0 && 2 * p < ahead->elems) {
      const uint16_t* line = ahead->rows +
                             static_cast<ptrdiff_t>(ahead_row) * ahead->stride +
                             2 * p;
      for (int i = 0; i < kKeys; ++i) PrefetchLine(line + i * ahead->stride);
    }
    const uint32_t* HWY_RESTRICT qe = qp + p * rt;
    const __m512bh q0 = reinterpret_cast<__m512bh>(_mm512_load_si512(qe));
    const __m512bh q1 =
        kQVecs > 1 ? reinterpret_cast<__m512bh>(_mm512_load_si512(qe + N)) : q0;
    const __m512bh q2 =
        kQVecs > 2 ? reinterpret_cast<__m512bh>(_mm512_load_si512(qe + 2 * N))
                   : q0;
#define SDPA_QKB_STEP(kk)                                                   \
  if constexpr (kKeys > kk) {                                               \
    const __m512bh b = BroadcastPair(k_rows[kk] + 2 * p);                   \
    c##kk##0 = _mm512_dpbf16_ps(c##kk##0, q0, b);                           \
    if constexpr (kQVecs > 1) c##kk##1 = _mm512_dpbf16_ps(c##kk##1, q1, b); \
    if constexpr (kQVecs > 2) c##kk##2 = _mm512_dpbf16_ps(c##kk##2, q2, b); \
  }
    SDPA_QKB_STEP(0)
    SDPA_QKB_STEP(1)
    SDPA_QKB_STEP(2)
    SDPA_QKB_STEP(3)
    SDPA_QKB_STEP(4)
    SDPA_QKB_STEP(5)
    SDPA_QKB_STEP(6)
    SDPA_QKB_STEP(7)
#undef SDPA_QKB_STEP
  }
  const hn::Full512<float> d;
  using V = hn::Vec<decltype(d)>;
#define SDPA_QKB_STORE(kk)                                                \
  V v##kk##0 {_mm512_mul_ps(c##kk##0, score_scale)}, v##kk##1 = v##kk##0, \
                                                     v##kk##2 = v##kk##0; \
  if constexpr (kKeys > kk) {                                             \
    float* HWY_RESTRICT sk = s + kk * rt;                                 \
    hn::Store(v##kk##0, d, sk);                                           \
    if constexpr (kQVecs > 1) {                                           \
      v##kk##1 = V{_mm512_mul_ps(c##kk##1, score_scale)};                 \
      hn::Store(v##kk##1, d, sk + 1 * N);                                 \
    }                                                                     \
    if constexpr (kQVecs > 2) {                                           \
      v##kk##2 = V{_mm512_mul_ps(c##kk##2, score_scale)};                 \
      hn::Store(v##kk##2, d, sk + 2 * N);                                 \
    }                                                                     \
  }
  SDPA_QKB_STORE(0)
  SDPA_QKB_STORE(1)
  SDPA_QKB_STORE(2)
  SDPA_QKB_STORE(3)
  SDPA_QKB_STORE(4)
  SDPA_QKB_STORE(5)
  SDPA_QKB_STORE(6)
  SDPA_QKB_STORE(7)
#undef SDPA_QKB_STORE
  if (s_max != nullptr) {
#define SDPA_QKB_MAX(v)                                                      \
  if constexpr (kQVecs > v) {                                                \
    AccumulateMax(d,                                                         \
                  MaxOfKeys<kKeys>(v0##v, v1##v, v2##v, v3##v, v4##v, v5##v, \
                                   v6##v, v7##v),                            \
                  s_max + v * N);                                            \
  }
    SDPA_QKB_MAX(0)
    SDPA_QKB_MAX(1)
    SDPA_QKB_MAX(2)
#undef SDPA_QKB_MAX
  }
}

// All keys [0, num_keys) of BF16 rows against a tile of kQVecs vectors of
// rows: groups of 8 keys, then one at a time. With k_ahead != nullptr (the
// first tile to reach a block, which takes K from L3 or memory), K rows are
// prefetched kPrefetchKeys ahead, spread over the tile, within the rows
// k_ahead->count allows.
template <int kQVecs>
HWY_NOINLINE SDPA_BF16_DOT_ATTR void QkBf16Block(
    const uint32_t* HWY_RESTRICT qp, size_t rt, size_t pairs,
    const uint16_t* HWY_RESTRICT k, ptrdiff_t k_row_stride, size_t num_keys,
    float score_scale, const RowStreamOf<uint16_t>* k_ahead,
    size_t prefetch_keys, float* HWY_RESTRICT s, float* HWY_RESTRICT s_max) {
  constexpr size_t kKeys = 8;
  const __m512 scale = _mm512_set1_ps(score_scale);
  size_t kk = 0;
  for (; kk + kKeys <= num_keys; kk += kKeys) {
    const size_t ahead_row = kk + prefetch_keys;
    const bool fetch =
        k_ahead != nullptr && ahead_row + kKeys <= k_ahead->count;
    QkBf16Tile<kQVecs, kKeys>(qp, rt, pairs,
                              k + static_cast<ptrdiff_t>(kk) * k_row_stride,
                              k_row_stride, scale, s + kk * rt, s_max,
                              fetch ? k_ahead : nullptr, ahead_row);
  }
  for (; kk < num_keys; ++kk) {
    QkBf16Tile<kQVecs, 1>(qp, rt, pairs,
                          k + static_cast<ptrdiff_t>(kk) * k_row_stride,
                          k_row_stride, scale, s + kk * rt, s_max, nullptr, 0);
  }
}

HWY_INLINE SDPA_BF16_DOT_ATTR hn::Vec512<float> ScaledSum(__m512 a, __m512 b,
                                                          __m512 scale) {
  return hn::Vec512<float>{_mm512_mul_ps(_mm512_add_ps(a, b), scale)};
}

// The dot form (decoding, few rows; QkDotBlock in qk_tile-inl.h) on BF16
// dot products: s[kk * rt + r] = score_scale * Dot(q row r, K row kk) for
// r < rows. Q rows hold `dim` BF16 (any dim: the last part vector is read
// masked), q_row_stride elements apart, scaled as for QkBf16Tile; K rows
// are the caller's BF16 rows, read in place. Prefetches as QkDotBlock's
// (PrefetchForDotKey).
template <class TV>
HWY_NOINLINE SDPA_BF16_DOT_ATTR void QkDotBf16Block(
    const uint16_t* HWY_RESTRICT q, size_t q_row_stride, size_t rows,
    size_t dim, const uint16_t* HWY_RESTRICT k, ptrdiff_t k_row_stride,
    size_t num_keys, size_t k_reach, const RowStreamOf<TV>* then,
    size_t then_rows, bool then_half_early, bool streamed, float score_scale,
    float* HWY_RESTRICT s, size_t rt) {
  constexpr size_t kPerVec = 32;  // BF16 elements (16 pairs) a vector
  const hn::Full512<float> d;
  using V = hn::Vec<decltype(d)>;
  const __m512 scale = _mm512_set1_ps(score_scale);
  for (size_t visit = 0; visit < num_keys; ++visit) {
    const size_t kk = VisitedRow(visit, num_keys, streamed);
    const uint16_t* HWY_RESTRICT kr =
        k + static_cast<ptrdiff_t>(kk) * k_row_stride;
    PrefetchForDotKey(kr, k_row_stride, dim, visit, kk, num_keys, k_reach, then,
                      then_rows, then_half_early, streamed);
    size_t r = 0;
    // Four rows at a time: each K vector loaded once for the four, two
    // chains per row, one joint reduction (as QkDotBlock).
    for (; r + 4 <= rows; r += 4) {
      const uint16_t* HWY_RESTRICT q0 = q + r * q_row_stride;
      const uint16_t* HWY_RESTRICT q1 = q0 + q_row_stride;
      const uint16_t* HWY_RESTRICT q2 = q1 + q_row_stride;
      const uint16_t* HWY_RESTRICT q3 = q2 + q_row_stride;
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
      size_t e = 0;
      for (; e + 2 * kPerVec <= dim; e += 2 * kPerVec) {
        const __m512bh k0 = LoadPairs(kr + e);
        const __m512bh k1 = LoadPairs(kr + e + kPerVec);
        a0 = Dot(a0, LoadPairs(q0 + e), k0);
        b0 = Dot(b0, LoadPairs(q0 + e + kPerVec), k1);
        a1 = Dot(a1, LoadPairs(q1 + e), k0);
        b1 = Dot(b1, LoadPairs(q1 + e + kPerVec), k1);
        a2 = Dot(a2, LoadPairs(q2 + e), k0);
        b2 = Dot(b2, LoadPairs(q2 + e + kPerVec), k1);
        a3 = Dot(a3, LoadPairs(q3 + e), k0);
        b3 = Dot(b3, LoadPairs(q3 + e + kPerVec), k1);
      }
      if (e + kPerVec <= dim) {
        const __m512bh k0 = LoadPairs(kr + e);
        a0 = Dot(a0, LoadPairs(q0 + e), k0);
        a1 = Dot(a1, LoadPairs(q1 + e), k0);
        a2 = Dot(a2, LoadPairs(q2 + e), k0);
        a3 = Dot(a3, LoadPairs(q3 + e), k0);
        e += kPerVec;
      }
      if (e < dim) {
        const size_t n = dim - e;
        const __m512bh k0 = LoadPairsPartial(kr + e, n);
        b0 = Dot(b0, LoadPairsPartial(q0 + e, n), k0);
        b1 = Dot(b1, LoadPairsPartial(q1 + e, n), k0);
        b2 = Dot(b2, LoadPairsPartial(q2 + e, n), k0);
        b3 = Dot(b3, LoadPairsPartial(q3 + e, n), k0);
      }
      SumsOfFour(d, ScaledSum(a0, b0, scale), ScaledSum(a1, b1, scale),
                 ScaledSum(a2, b2, scale), ScaledSum(a3, b3, scale),
                 s + kk * rt + r);
    }
    for (; r < rows; ++r) {
      const uint16_t* HWY_RESTRICT qr = q + r * q_row_stride;
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      size_t e = 0;
      for (; e + 4 * kPerVec <= dim; e += 4 * kPerVec) {
        a0 = Dot(a0, LoadPairs(qr + e), LoadPairs(kr + e));
        a1 = Dot(a1, LoadPairs(qr + e + kPerVec), LoadPairs(kr + e + kPerVec));
        a2 = Dot(a2, LoadPairs(qr + e + 2 * kPerVec),
                 LoadPairs(kr + e + 2 * kPerVec));
        a3 = Dot(a3, LoadPairs(qr + e + 3 * kPerVec),
                 LoadPairs(kr + e + 3 * kPerVec));
      }
      for (; e + kPerVec <= dim; e += kPerVec) {
        a0 = Dot(a0, LoadPairs(qr + e), LoadPairs(kr + e));
      }
      if (e < dim) {
        a1 = Dot(a1, LoadPairsPartial(qr + e, dim - e),
                 LoadPairsPartial(kr + e, dim - e));
      }
      const V total{
          _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))};
      s[kk * rt + r] = hn::GetLane(hn::SumOfLanes(d, total)) * score_scale;
    }
  }
}

#endif  // HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_QK_BF16_TILE_INL_H_
