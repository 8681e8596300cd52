// Register-tiled Q·Kᵀ micro-kernels. Scores come out transposed, S[key][row]:
// a vector holds one key's scores for N query rows, so the online softmax
// (row max, row sum, rescale) needs no horizontal reductions at all.
//
// Two forms:
// - QkLanesTile: query rows in lanes. Q is packed transposed (qt[e][row],
//   pre-scaled); each K element is broadcast straight from the caller's
//   memory, so K needs no packing when its rows are contiguous. On
//   SSSE3/SSE4 its place is taken by QkPairRows (qk_pair_tile-inl.h),
//   which pairs rows and head-dim elements in lanes; QkRowsTile picks.
// - QkDotBlock: for few rows (decoding), K rows are vectors over the head dim
//   and each score is a horizontal sum; K is read once for all rows.
//
// Vectors are named variables, not arrays: SVE vectors are sizeless types.

#if defined(SDPA_KERNELS_QK_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_QK_TILE_INL_H_
#undef SDPA_KERNELS_QK_TILE_INL_H_
#else
#define SDPA_KERNELS_QK_TILE_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <stddef.h>

#include <algorithm>

#include "src/kernels/load_wide-inl.h"
#include "src/kernels/qk_pair_tile-inl.h"
#include "src/kernels/row_stream.h"
#include "src/kernels/score_max-inl.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// s[kk * rt + lane] = sum_e qt[e * rt + lane] * k[kk * k_row_stride + e]
// for kk < kKeys and lane < kQVecs * N. qt is vector-aligned; k rows hold
// `dim` contiguous floats (never read past them). With num_ahead != 0, rows
// [ahead_row, ahead_row + kKeys) of each `ahead` stream are prefetched one
// line per row each time the tile enters a new line of its K rows (floats
// at or past `dim` are left to the caller). With s_max != nullptr (vector-
// aligned), s_max[lane] = max(s_max[lane], the lane's kKeys scores).
template <int kQVecs, int kKeys, class D>
HWY_INLINE void QkLanesTile(D d, const float* HWY_RESTRICT qt, size_t rt,
                            size_t dim, const float* HWY_RESTRICT k,
                            ptrdiff_t k_row_stride, float* HWY_RESTRICT s,
                            float* HWY_RESTRICT s_max,
                            const RowStream* ahead = nullptr,
                            size_t num_ahead = 0, size_t ahead_row = 0) {
  static_assert(1 <= kQVecs && kQVecs <= 4, "kQVecs in [1, 4]");
  static_assert(1 <= kKeys && kKeys <= 8, "kKeys in [1, 8]");
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  // Rows 0-2 from p0, 3-5 from p3, 6-7 from p6, at 0, 1 or 2 strides: three
  // pointers and two strides stay in general registers, where eight row
  // pointers spilled (AVX-512 3 x 8: two reloads per step, one through a
  // vector register, on an FMA port); and the prefetch test runs once per
  // line, not per element. One core, B1 H8 T2048/T4096 D64/D128, five
  // interleaved rounds against the build before: AVX2 +3-9% in each
  // (T2048 D128 79-90 -> 86-92 GFLOP/s), AVX-512 -2% to +4% by round.
  const float* HWY_RESTRICT p0 = k;
  const float* HWY_RESTRICT p3 = kKeys > 3 ? k + 3 * k_row_stride : k;
  const float* HWY_RESTRICT p6 = kKeys > 6 ? k + 6 * k_row_stride : k;
  const ptrdiff_t s1 = k_row_stride, s2 = 2 * k_row_stride;
#define SDPA_QK_DECLARE(kk)                                           \
  V c##kk##0 = hn::Zero(d), c##kk##1 = c##kk##0, c##kk##2 = c##kk##0, \
    c##kk##3 = c##kk##0;
  SDPA_QK_DECLARE(0)
  SDPA_QK_DECLARE(1)
  SDPA_QK_DECLARE(2)
  SDPA_QK_DECLARE(3)
  SDPA_QK_DECLARE(4)
  SDPA_QK_DECLARE(5)
  SDPA_QK_DECLARE(6)
  SDPA_QK_DECLARE(7)
#undef SDPA_QK_DECLARE
  for (size_t line = 0; line < dim; line += kFloatsPerLine) {
    for (size_t i = 0; i < num_ahead; ++i) {
      PrefetchRowsLine(ahead[i], ahead_row, kKeys, line);
    }
    const size_t end = std::min(dim, line + kFloatsPerLine);
    for (size_t e = line; e < end; ++e) {
      const float* HWY_RESTRICT qe = qt + e * rt;
      const V q0 = hn::Load(d, qe);
      const V q1 = kQVecs > 1 ? hn::Load(d, qe + 1 * N) : q0;
      const V q2 = kQVecs > 2 ? hn::Load(d, qe + 2 * N) : q0;
      const V q3 = kQVecs > 3 ? hn::Load(d, qe + 3 * N) : q0;
#define SDPA_QK_STEP(kk, p, offset)                                   \
  if constexpr (kKeys > kk) {                                         \
    const V b = hn::Set(d, p[offset]);                                \
    c##kk##0 = hn::MulAdd(q0, b, c##kk##0);                           \
    if constexpr (kQVecs > 1) c##kk##1 = hn::MulAdd(q1, b, c##kk##1); \
    if constexpr (kQVecs > 2) c##kk##2 = hn::MulAdd(q2, b, c##kk##2); \
    if constexpr (kQVecs > 3) c##kk##3 = hn::MulAdd(q3, b, c##kk##3); \
  }
      SDPA_QK_STEP(0, p0, 0)
      SDPA_QK_STEP(1, p0, s1)
      SDPA_QK_STEP(2, p0, s2)
      SDPA_QK_STEP(3, p3, 0)
      SDPA_QK_STEP(4, p3, s1)
      SDPA_QK_STEP(5, p3, s2)
      SDPA_QK_STEP(6, p6, 0)
      SDPA_QK_STEP(7, p6, s1)
#undef SDPA_QK_STEP
      ++p0;
      ++p3;
      ++p6;
    }
  }
#define SDPA_QK_STORE(kk)                                         \
  if constexpr (kKeys > kk) {                                     \
    float* HWY_RESTRICT sk = s + kk * rt;                         \
    hn::Store(c##kk##0, d, sk);                                   \
    if constexpr (kQVecs > 1) hn::Store(c##kk##1, d, sk + 1 * N); \
    if constexpr (kQVecs > 2) hn::Store(c##kk##2, d, sk + 2 * N); \
    if constexpr (kQVecs > 3) hn::Store(c##kk##3, d, sk + 3 * N); \
  }
  SDPA_QK_STORE(0)
  SDPA_QK_STORE(1)
  SDPA_QK_STORE(2)
  SDPA_QK_STORE(3)
  SDPA_QK_STORE(4)
  SDPA_QK_STORE(5)
  SDPA_QK_STORE(6)
  SDPA_QK_STORE(7)
#undef SDPA_QK_STORE
  if (s_max != nullptr) {
#define SDPA_QK_MAX(v)                                                       \
  if constexpr (kQVecs > v) {                                                \
    AccumulateMax(d,                                                         \
                  MaxOfKeys<kKeys>(c0##v, c1##v, c2##v, c3##v, c4##v, c5##v, \
                                   c6##v, c7##v),                            \
                  s_max + v * N);                                            \
  }
    SDPA_QK_MAX(0)
    SDPA_QK_MAX(1)
    SDPA_QK_MAX(2)
    SDPA_QK_MAX(3)
#undef SDPA_QK_MAX
  }
}

// The rows-in-lanes tile of this target: paired rows on SSSE3/SSE4
// (qk_pair_tile-inl.h), which then expect Q packed by QueryPackOffset.
template <int kQVecs, int kKeys, class D>
HWY_INLINE void QkRowsTile(D d, const float* HWY_RESTRICT qt, size_t rt,
                           size_t dim, const float* HWY_RESTRICT k,
                           ptrdiff_t k_row_stride, float* HWY_RESTRICT s,
                           float* HWY_RESTRICT s_max,
                           const RowStream* ahead = nullptr,
                           size_t num_ahead = 0, size_t ahead_row = 0) {
#if HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_SSE4
  (void)d;
  QkPairRows<kQVecs, kKeys>(qt, rt, dim, k, k_row_stride, s, s_max, ahead,
                            num_ahead, ahead_row);
#else
  QkLanesTile<kQVecs, kKeys>(d, qt, rt, dim, k, k_row_stride, s, s_max, ahead,
                             num_ahead, ahead_row);
#endif
}

// Decoding streams K from memory once, with too little work per key for the
// hardware prefetchers to stay ahead: K rows are prefetched kPrefetchKeys
// ahead. Measured on one core, H32 Tk4096 D128 Tq1 (MHA / GQA 32:8): 22 / 21
// GB/s without, 25 / 27 with (and V rows prefetched by the P·V kernel).
constexpr size_t kPrefetchKeys = 16;

// All keys [0, num_keys) against a tile of kQVecs * N rows: full groups of
// kKeys, then the remainder one key at a time. For a task of one tile, K and
// V come from memory and are read once: `ahead` (K, and V for the P·V step
// after this) are prefetched kPrefetchKeys keys ahead, spread over the tile
// (QkLanesTile). Issued in one burst per group instead (8 keys x (K + V) =
// 128 lines at D128), they held AVX2 Tq8 decoding at 48-50 GFLOP/s; spread,
// 72-73. s_max (may be null) takes the maximum as in QkLanesTile.
template <int kQVecs, int kKeys, class D>
HWY_INLINE void QkLanesBlock(D d, const float* HWY_RESTRICT qt, size_t rt,
                             size_t dim, const float* HWY_RESTRICT k,
                             ptrdiff_t k_row_stride, size_t num_keys,
                             const RowStream* ahead, size_t num_ahead,
                             float* HWY_RESTRICT s, float* HWY_RESTRICT s_max) {
  // Lines of `ahead` rows past the K row length (V rows longer than K rows)
  // are not reached by the tile's spread prefetch.
  const size_t past_dim =
      (dim + kFloatsPerLine - 1) / kFloatsPerLine * kFloatsPerLine;
  // Rows every stream may prefetch.
  size_t reach = num_ahead > 0 ? ahead[0].count : 0;
  for (size_t i = 1; i < num_ahead; ++i) {
    reach = std::min(reach, ahead[i].count);
  }
  size_t kk = 0;
  for (; kk + kKeys <= num_keys; kk += kKeys) {
    const size_t ahead_row = kk + kPrefetchKeys;
    const size_t streams = ahead_row + kKeys <= reach ? num_ahead : 0;
    QkRowsTile<kQVecs, kKeys>(
        d, qt, rt, dim, k + static_cast<ptrdiff_t>(kk) * k_row_stride,
        k_row_stride, s + kk * rt, s_max, ahead, streams, ahead_row);
    for (size_t i = 0; i < streams; ++i) {
      PrefetchRowSpan(ahead[i], ahead_row, kKeys, past_dim, ahead[i].elems);
    }
  }
  for (; kk < num_keys; ++kk) {
    QkRowsTile<kQVecs, 1>(d, qt, rt, dim,
                          k + static_cast<ptrdiff_t>(kk) * k_row_stride,
                          k_row_stride, s + kk * rt, s_max);
  }
}

// Few-row form: s[kk * rt + r] = dot(q[r * dim_padded ...], k[kk * k_row_stride
// ...]) for r < rows; lanes rows <= r < rt (padding) are left as they are.
// Both q rows and k rows hold dim_padded floats (a multiple of N,
// zero-padded). K rows are prefetched kPrefetchKeys ahead.

#if HWY_TARGET != HWY_SCALAR
// Block i of the result holds the lane sums of blocks i of v0..v3, in
// that order (N a multiple of 4). Interleaving pairs of vectors within each
// 128-bit block, then pairs of pairs: ~4 shuffles for 4 x N/4 sums.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V BlockSumsOfFour(D d, V v0, V v1, V v2, V v3) {
  const hn::Repartition<uint64_t, D> d64;
  const V t01 =
      hn::Add(hn::InterleaveLower(d, v0, v1), hn::InterleaveUpper(d, v0, v1));
  const V t23 =
      hn::Add(hn::InterleaveLower(d, v2, v3), hn::InterleaveUpper(d, v2, v3));
  const auto a = hn::BitCast(d64, t01);
  const auto b = hn::BitCast(d64, t23);
  return hn::Add(hn::BitCast(d, hn::InterleaveLower(d64, a, b)),
                 hn::BitCast(d, hn::InterleaveUpper(d64, a, b)));
}

// out[0..3] = the lane sums of v0..v3 (N a multiple of 4): every block of
// BlockSumsOfFour holds its share of the four sums; the blocks are then
// added. Four rows cost ~4 shuffles + the block adds instead of four
// reductions.
template <class D, class V = hn::Vec<D>>
HWY_INLINE void SumsOfFour(D d, V v0, V v1, V v2, V v3,
                           float* HWY_RESTRICT out) {
  const V sums = BlockSumsOfFour(d, v0, v1, v2, v3);
  HWY_ALIGN float blocks[hn::MaxLanes(d)];
  hn::Store(sums, d, blocks);
  const hn::CappedTag<float, 4> d4;
  auto total = hn::Load(d4, blocks);
  for (size_t i = 4; i < hn::Lanes(d); i += 4) {
    total = hn::Add(total, hn::Load(d4, blocks + i));
  }
  hn::StoreU(total, d4, out);
}
#endif

// The dot forms' prefetches at the visit-th key visited, key kk (K row kr),
// of a block: K rows [0, k_reach) may be prefetched, kPrefetchKeys ahead of
// kk in its stream (k_reach >= num_keys: past the block where K is the
// caller's memory). `then` (may be null): the rows read next (V of this
// block), whose first then_rows rows in the P·V step's order (StreamedRow
// order where `streamed`, else row order) are prefetched during the last
// then_rows visits, so that the streams the P·V step starts on are
// already on their way. then_half_early: the first half of the block's
// `then` rows are also fetched into L2 while the keys are scored, one row
// every second key, for a P·V step with more work per row than memory time
// (see `values_early` in TaskRunner::ProcessTile). PrefetchValuesForKey is
// the `then` part alone, for tiles that prefetch K their own way.
template <class TV>
HWY_INLINE void PrefetchValuesForKey(size_t visit, size_t kk, size_t num_keys,
                                     const RowStreamOf<TV>* then,
                                     size_t then_rows, bool then_half_early,
                                     bool streamed) {
  if (then != nullptr && visit + then_rows >= num_keys) {
    const size_t next = visit + then_rows - num_keys;
    if (next < num_keys) {
      PrefetchRows(*then, VisitedRow(next, num_keys, streamed), 1);
    }
  }
  if (then_half_early && kk % 2 == 0) {
    PrefetchRows</*kToL2=*/true>(*then, kk / 2, 1);
  }
}

template <class TK, class TV>
HWY_INLINE void PrefetchForDotKey(const TK* HWY_RESTRICT kr,
                                  ptrdiff_t k_row_stride, size_t k_elems,
                                  size_t visit, size_t kk, size_t num_keys,
                                  size_t k_reach, const RowStreamOf<TV>* then,
                                  size_t then_rows, bool then_half_early,
                                  bool streamed) {
  if (kk + kPrefetchKeys < k_reach) {
    PrefetchElems(kr + static_cast<ptrdiff_t>(kPrefetchKeys) * k_row_stride,
                  k_elems);
  }
  PrefetchValuesForKey(visit, kk, num_keys, then, then_rows, then_half_early,
                       streamed);
}

// Prefetches as in PrefetchForDotKey. K rows may be f32 or 16-bit (TK, read
// in place and widened), as may the `then` rows (TV). `streamed`: the keys
// are visited in StreamedRow order, for the few-row tasks whose P·V step
// (the wide tiles) does the same; taller ones keep row order (see
// TaskRunner::ProcessTileRows).
template <class D, class TK, class TV>
HWY_INLINE void QkDotBlock(D d, const float* HWY_RESTRICT q, size_t rows,
                           size_t dim_padded, const TK* HWY_RESTRICT k,
                           ptrdiff_t k_row_stride, size_t num_keys,
                           size_t k_reach, const RowStreamOf<TV>* then,
                           size_t then_rows, bool then_half_early,
                           bool streamed, float* HWY_RESTRICT s, size_t rt) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  // One key at a time, four FMA chains over its row: measured (AVX3, one
  // core, H32 Tk4096 D128 Tq1) against four and eight adjacent keys at a
  // time, which read four or eight K rows at once: GQA 32:8 34 / 27 -> 40
  // GB/s, MHA and AVX2 unchanged within the noise. Where `streamed`, in
  // four streams over the block, one key of each in turn.
  for (size_t visit = 0; visit < num_keys; ++visit) {
    const size_t kk = VisitedRow(visit, num_keys, streamed);
    const TK* HWY_RESTRICT kr = k + static_cast<ptrdiff_t>(kk) * k_row_stride;
    PrefetchForDotKey(kr, k_row_stride, dim_padded, visit, kk, num_keys,
                      k_reach, then, then_rows, then_half_early, streamed);
    size_t r = 0;
#if HWY_TARGET != HWY_SCALAR
    // Four rows at a time (8-row decoding on AVX-512): each K vector loaded
    // once for the four, two FMA chains per row, one joint reduction.
    for (; N % 4 == 0 && r + 4 <= rows; r += 4) {
      const float* HWY_RESTRICT q0 = q + r * dim_padded;
      const float* HWY_RESTRICT q1 = q0 + dim_padded;
      const float* HWY_RESTRICT q2 = q1 + dim_padded;
      const float* HWY_RESTRICT q3 = q2 + dim_padded;
      V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
      V b0 = a0, b1 = a0, b2 = a0, b3 = a0;
      size_t e = 0;
      for (; e + 2 * N <= dim_padded; e += 2 * N) {
        const V k0 = LoadWide(d, kr + e);
        const V k1 = LoadWide(d, kr + e + N);
        a0 = hn::MulAdd(hn::Load(d, q0 + e), k0, a0);
        b0 = hn::MulAdd(hn::Load(d, q0 + e + N), k1, b0);
        a1 = hn::MulAdd(hn::Load(d, q1 + e), k0, a1);
        b1 = hn::MulAdd(hn::Load(d, q1 + e + N), k1, b1);
        a2 = hn::MulAdd(hn::Load(d, q2 + e), k0, a2);
        b2 = hn::MulAdd(hn::Load(d, q2 + e + N), k1, b2);
        a3 = hn::MulAdd(hn::Load(d, q3 + e), k0, a3);
        b3 = hn::MulAdd(hn::Load(d, q3 + e + N), k1, b3);
      }
      if (e < dim_padded) {
        const V k0 = LoadWide(d, kr + e);
        a0 = hn::MulAdd(hn::Load(d, q0 + e), k0, a0);
        a1 = hn::MulAdd(hn::Load(d, q1 + e), k0, a1);
        a2 = hn::MulAdd(hn::Load(d, q2 + e), k0, a2);
        a3 = hn::MulAdd(hn::Load(d, q3 + e), k0, a3);
      }
      SumsOfFour(d, hn::Add(a0, b0), hn::Add(a1, b1), hn::Add(a2, b2),
                 hn::Add(a3, b3), s + kk * rt + r);
    }
#endif
    for (; r < rows; ++r) {
      const float* HWY_RESTRICT qr = q + r * dim_padded;
      V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
      size_t e = 0;
      for (; e + 4 * N <= dim_padded; e += 4 * N) {
        a0 = hn::MulAdd(hn::Load(d, qr + e), LoadWide(d, kr + e), a0);
        a1 = hn::MulAdd(hn::Load(d, qr + e + N), LoadWide(d, kr + e + N), a1);
        a2 = hn::MulAdd(hn::Load(d, qr + e + 2 * N),
                        LoadWide(d, kr + e + 2 * N), a2);
        a3 = hn::MulAdd(hn::Load(d, qr + e + 3 * N),
                        LoadWide(d, kr + e + 3 * N), a3);
      }
      for (; e < dim_padded; e += N) {
        a0 = hn::MulAdd(hn::Load(d, qr + e), LoadWide(d, kr + e), a0);
      }
      s[kk * rt + r] = hn::GetLane(
          hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_QK_TILE_INL_H_
