// Register-tiled P·V micro-kernel fused with the online-softmax rescale:
//   o[r][c] = o[r][c] * alpha[r] + sum_j p[j][r] * v[j][c]
// P comes transposed (p[j * rt + r], as the softmax left it); each P element
// is broadcast, each V row chunk loaded once per key for kRows rows.

#if defined(SDPA_KERNELS_PV_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_PV_TILE_INL_H_
#undef SDPA_KERNELS_PV_TILE_INL_H_
#else
#define SDPA_KERNELS_PV_TILE_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>

#include "src/kernels/load_wide-inl.h"
#include "src/kernels/row_stream.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// kRows x kVecs accumulators. p points at P[0][r0], v at V[0][c0] (rows of
// at least kVecs * N readable floats), o at O[r0][c0] (vector-aligned),
// alpha at alpha[r0]. kExpanded: p holds each weight as a whole vector,
// row r of key j at p[j * rt + r * N] (vector-aligned).
// kSkipZeros: a weight of -0.0 marks a key hidden from the row
// (MarkHiddenKeys), which then contributes nothing even where V holds
// Inf/NaN; a visible key of weight +0 still adds 0 * V. Slower, used only
// for blocks that are both masked and hold non-finite V.
// kPrefetch: decoding streams V from memory with little work per row, so the
// hardware prefetchers fall behind; fetch prefetch_floats floats of the row
// kPrefetchValueRows rows ahead (the whole row during the first column
// chunk: a chunk's lines alone, one per 512-byte row at D128 on AVX2, are a
// strided pattern that left the V loads stalled on memory).
constexpr size_t kPrefetchValueRows = 32;

// SSSE3/SSE4 have no broadcast load: hn::Set from memory is movss + shufps,
// and the shuffle takes an FP pipe slot from mulps/addps (6 shuffles per 12
// multiply-adds in a 6 x 2 tile), once per weight per column chunk. Those
// targets expand each weight to a whole vector once per row group
// (PvBlock), so the tiles read them with plain loads.
#if HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_SSE4
constexpr bool kExpandWeights = true;
#else
constexpr bool kExpandWeights = false;
#endif

HWY_INLINE bool IsNegativeZero(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof(bits));
  return bits == 0x80000000u;
}

template <int kRows, int kVecs, bool kSkipZeros, bool kPrefetch, bool kExpanded,
          class D, class T>
HWY_INLINE void PvTile(D d, const float* HWY_RESTRICT p, size_t rt,
                       size_t num_keys, const T* HWY_RESTRICT v,
                       ptrdiff_t v_row_stride, const float* HWY_RESTRICT alpha,
                       float* HWY_RESTRICT o, size_t o_row_stride,
                       size_t prefetch_floats) {
  static_assert(1 <= kRows && kRows <= 8, "kRows in [1, 8]");
  static_assert(1 <= kVecs && kVecs <= 4, "kVecs in [1, 4]");
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const size_t step = kExpanded ? N : 1;  // between rows' weights
  const V zero = hn::Zero(d);
#define SDPA_PV_LOAD(r)                                                       \
  V a##r##0 = zero, a##r##1 = zero, a##r##2 = zero, a##r##3 = zero;           \
  if constexpr (kRows > r) {                                                  \
    const V scale = hn::Set(d, alpha[r]);                                     \
    const float* HWY_RESTRICT orow = o + r * o_row_stride;                    \
    a##r##0 = hn::Mul(hn::Load(d, orow), scale);                              \
    if constexpr (kVecs > 1) a##r##1 = hn::Mul(hn::Load(d, orow + N), scale); \
    if constexpr (kVecs > 2)                                                  \
      a##r##2 = hn::Mul(hn::Load(d, orow + 2 * N), scale);                    \
    if constexpr (kVecs > 3)                                                  \
      a##r##3 = hn::Mul(hn::Load(d, orow + 3 * N), scale);                    \
  }
  SDPA_PV_LOAD(0)
  SDPA_PV_LOAD(1)
  SDPA_PV_LOAD(2)
  SDPA_PV_LOAD(3)
  SDPA_PV_LOAD(4)
  SDPA_PV_LOAD(5)
  SDPA_PV_LOAD(6)
  SDPA_PV_LOAD(7)
#undef SDPA_PV_LOAD
  for (size_t j = 0; j < num_keys; ++j) {
    const T* HWY_RESTRICT vj = v + static_cast<ptrdiff_t>(j) * v_row_stride;
    const float* HWY_RESTRICT pj = p + j * rt;
    if constexpr (kPrefetch) {
      PrefetchElems(
          vj + static_cast<ptrdiff_t>(kPrefetchValueRows) * v_row_stride,
          prefetch_floats);
    }
    const V v0 = LoadWide(d, vj);
    const V v1 = kVecs > 1 ? LoadWide(d, vj + N) : v0;
    const V v2 = kVecs > 2 ? LoadWide(d, vj + 2 * N) : v0;
    const V v3 = kVecs > 3 ? LoadWide(d, vj + 3 * N) : v0;
#define SDPA_PV_ACC(r, c) a##r##c = hn::MulAdd(b, v##c, a##r##c);
#define SDPA_PV_STEP(r)                                                    \
  if constexpr (kRows > r) {                                               \
    if (!kSkipZeros || !IsNegativeZero(pj[r * step])) {                    \
      const V b = kExpanded ? hn::Load(d, pj + r * N) : hn::Set(d, pj[r]); \
      SDPA_PV_ACC(r, 0)                                                    \
      if constexpr (kVecs > 1) {                                           \
        SDPA_PV_ACC(r, 1)                                                  \
      }                                                                    \
      if constexpr (kVecs > 2) {                                           \
        SDPA_PV_ACC(r, 2)                                                  \
      }                                                                    \
      if constexpr (kVecs > 3) {                                           \
        SDPA_PV_ACC(r, 3)                                                  \
      }                                                                    \
    }                                                                      \
  }
    SDPA_PV_STEP(0)
    SDPA_PV_STEP(1)
    SDPA_PV_STEP(2)
    SDPA_PV_STEP(3)
    SDPA_PV_STEP(4)
    SDPA_PV_STEP(5)
    SDPA_PV_STEP(6)
    SDPA_PV_STEP(7)
#undef SDPA_PV_STEP
#undef SDPA_PV_ACC
  }
#define SDPA_PV_STORE(r)                                          \
  if constexpr (kRows > r) {                                      \
    float* HWY_RESTRICT orow = o + r * o_row_stride;              \
    hn::Store(a##r##0, d, orow);                                  \
    if constexpr (kVecs > 1) hn::Store(a##r##1, d, orow + N);     \
    if constexpr (kVecs > 2) hn::Store(a##r##2, d, orow + 2 * N); \
    if constexpr (kVecs > 3) hn::Store(a##r##3, d, orow + 3 * N); \
  }
  SDPA_PV_STORE(0)
  SDPA_PV_STORE(1)
  SDPA_PV_STORE(2)
  SDPA_PV_STORE(3)
  SDPA_PV_STORE(4)
  SDPA_PV_STORE(5)
  SDPA_PV_STORE(6)
  SDPA_PV_STORE(7)
#undef SDPA_PV_STORE
}

// Rows in the first tile when `rows` are cut into as few tiles of at most
// max_rows as possible, of sizes that differ by at most one: 32 rows in
// tiles of 6 are 6, 6, 5, 5, 5, 5, not five 6s and a 2-row tile whose 2 x
// kVecs accumulators cannot hide the FMA latency. Later tiles are never
// larger than earlier ones.
HWY_INLINE size_t FirstTileRows(size_t rows, size_t max_rows) {
  const size_t tiles = (rows + max_rows - 1) / max_rows;
  return (rows + tiles - 1) / tiles;
}

// Rows [0, rows), one column chunk of exactly kVecs vectors, in tiles of
// FirstTileRows sizes.
template <int kRows, int kVecs, bool kSkipZeros, bool kPrefetch, bool kExpanded,
          class D, class T>
HWY_INLINE void PvRows(D d, const float* HWY_RESTRICT p, size_t rt, size_t rows,
                       size_t num_keys, const T* HWY_RESTRICT v,
                       ptrdiff_t v_row_stride, const float* HWY_RESTRICT alpha,
                       float* HWY_RESTRICT o, size_t o_row_stride,
                       size_t prefetch_floats) {
  const size_t step = kExpanded ? hn::Lanes(d) : 1;
  size_t r = 0;
  // Only the first tile prefetches (the later ones get 0 floats): they find
  // V in cache, and repeating its prefetches (whole rows in the first
  // column chunk) cost AVX-512 decoding with 9-48 rows, one core, H32
  // Tk4096 D128, four interleaved rounds: Tq32 212-216 -> 225-236 GFLOP/s;
  // Tq9 and Tq16 -3% to +11% by round; AVX2 and SSE4 Tq8 (two 4-row
  // tiles) within the noise. (A second, prefetch-free instantiation for
  // the later tiles inlined 2^kRows copies of the tile: sanitizer builds
  // of attention.cc ran out of time.)
  for (; r < rows && FirstTileRows(rows - r, kRows) == kRows; r += kRows) {
    PvTile<kRows, kVecs, kSkipZeros, kPrefetch, kExpanded>(
        d, p + r * step, rt, num_keys, v, v_row_stride, alpha + r,
        o + r * o_row_stride, o_row_stride, r == 0 ? prefetch_floats : 0);
  }
  if constexpr (kRows > 1) {
    if (r < rows) {
      // The rest in shorter tiles.
      PvRows<kRows - 1, kVecs, kSkipZeros, kPrefetch, kExpanded>(
          d, p + r * step, rt, rows - r, num_keys, v, v_row_stride, alpha + r,
          o + r * o_row_stride, o_row_stride, r == 0 ? prefetch_floats : 0);
    }
  }
}

// Every column chunk for rows [0, rows): kVecs vectors, then one of 2 where
// at least 2 remain (and kVecs > 2), then single ones.
template <int kRows, int kVecs, bool kSkipZeros, bool kPrefetch, bool kExpanded,
          class D, class T>
HWY_INLINE void PvColumns(D d, const float* HWY_RESTRICT p, size_t rt,
                          size_t rows, size_t num_keys, const T* HWY_RESTRICT v,
                          ptrdiff_t v_row_stride, size_t num_vecs,
                          const float* HWY_RESTRICT alpha,
                          float* HWY_RESTRICT o, size_t o_row_stride) {
  const size_t N = hn::Lanes(d);
  // Floats of each V row to prefetch for a chunk of `vecs` at column c: the
  // first chunk prefetches whole rows (see kPrefetchValueRows).
  const auto prefetch_floats = [&](size_t c, size_t vecs) {
    return (c == 0 ? num_vecs : vecs) * N;
  };
  size_t c = 0;
  for (; c + kVecs <= num_vecs; c += kVecs) {
    PvRows<kRows, kVecs, kSkipZeros, kPrefetch, kExpanded>(
        d, p, rt, rows, num_keys, v + c * N, v_row_stride, alpha, o + c * N,
        o_row_stride, prefetch_floats(c, kVecs));
  }
  if constexpr (kVecs > 2) {
    if (c + 2 <= num_vecs) {
      PvRows<kRows, 2, kSkipZeros, kPrefetch, kExpanded>(
          d, p, rt, rows, num_keys, v + c * N, v_row_stride, alpha, o + c * N,
          o_row_stride, prefetch_floats(c, 2));
      c += 2;
    }
  }
  for (; c < num_vecs; ++c) {
    PvRows<kRows, 1, kSkipZeros, kPrefetch, kExpanded>(
        d, p, rt, rows, num_keys, v + c * N, v_row_stride, alpha, o + c * N,
        o_row_stride, prefetch_floats(c, 1));
  }
}

// Prefill P·V passes over each V column chunk once per row tile (8 tiles
// of 6 rows at 48 rows a tile on AVX-512): over a whole 256-key block, the
// chunk's V rows and P outgrow L1 (AVX-512: 64 KiB of V and 48 KiB of P;
// AVX2: 16 and 32 KiB) and every tile reads them from L2.
// Runs of 64 keys keep a run's V and P in L1 for all its tiles, at the cost
// of loading and storing the O tile once per run. One core, B1 H8, an
// Intel Xeon (48 KiB L1), medians of 3 interleaved rounds, GFLOP/s:
// AVX-512 T2048 D128 160.8 -> 166.4, D64 156.6 -> 162.2, T4096 D128
// 165.7 -> 169.2, T512 D64 148.4 -> 155.5, GQA 32:8 157.7 -> 169.7,
// causal +5-8%; AVX2 T2048 D128 84.0 -> 91.2, T512 D128 81.6 -> 90.0,
// GQA 84.0 -> 92.1; two threads alike; decoding (one run) unchanged.
// 32-key runs measured below 64, 128 no better. Not measured on AMD.
constexpr size_t kPvRunKeys = 64;

// Floats of scratch PvBlock needs for blocks of up to max_keys keys.
template <int kRows, class D>
size_t PvBlockScratch(D d, size_t max_keys) {
  return kExpandWeights ? max_keys * kRows * hn::Lanes(d) : 0;
}

// The whole update for `rows` rows and num_vecs vector columns. `wide`
// (PvBlockScratch floats, vector-aligned) holds the expanded weights of one
// row group where kExpandWeights. V rows may be f32 or 16-bit (T, read in
// place and widened; decoding). `ones`: `rows` floats of 1, the alpha of
// the key runs after the first (prefill; unused where kPrefetch).
template <int kRows, int kVecs, bool kSkipZeros, bool kPrefetch, class D,
          class T>
HWY_INLINE void PvBlock(D d, const float* HWY_RESTRICT p, size_t rt,
                        size_t rows, size_t num_keys, const T* HWY_RESTRICT v,
                        ptrdiff_t v_row_stride, size_t num_vecs,
                        const float* HWY_RESTRICT alpha,
                        const float* HWY_RESTRICT ones, float* HWY_RESTRICT o,
                        size_t o_row_stride, float* HWY_RESTRICT wide) {
  if constexpr (!kExpandWeights) {
    (void)wide;
    // Prefill: runs of kPvRunKeys keys, each through every column chunk and
    // row tile before the next; O is rescaled by alpha in the first run
    // only. Decoding streams V once: one run. The later runs take 1s as
    // alpha (a multiply per accumulator) rather than a flag to the tiles,
    // which they share with decoding: the flag measured AVX2 and AVX-512
    // Tq8 decoding 3-5% slower.
    HWY_DASSERT(num_keys > 0);  // ProcessTile skips blocks a tile cannot see
    const size_t run = kPrefetch ? num_keys : kPvRunKeys;
    for (size_t j0 = 0; j0 < num_keys; j0 += run) {
      PvColumns<kRows, kVecs, kSkipZeros, kPrefetch, false>(
          d, p + j0 * rt, rt, rows, std::min(run, num_keys - j0),
          v + static_cast<ptrdiff_t>(j0) * v_row_stride, v_row_stride, num_vecs,
          j0 == 0 ? alpha : ones, o, o_row_stride);
    }
  } else {
    (void)ones;
    // Row groups outermost, so each weight is expanded once, not once per
    // column chunk; a group's weights (num_keys x kRows vectors) stay in L1.
    const size_t N = hn::Lanes(d);
    const size_t wide_stride = kRows * N;
    for (size_t r0 = 0, group = 0; r0 < rows; r0 += group) {
      group = FirstTileRows(rows - r0, kRows);
      for (size_t j = 0; j < num_keys; ++j) {
        for (size_t r = 0; r < group; ++r) {
          hn::Store(hn::Set(d, p[j * rt + r0 + r]), d,
                    wide + j * wide_stride + r * N);
        }
      }
      PvColumns<kRows, kVecs, kSkipZeros, kPrefetch, true>(
          d, wide, wide_stride, group, num_keys, v, v_row_stride, num_vecs,
          alpha + r0, o + r0 * o_row_stride, o_row_stride);
    }
  }
}

// Decoding (few rows): each V row read in one pass, up to 8 vectors wide, so
// that its cache lines are requested together and prefetched once (the
// kVecs <= 4 tiles above pass over a 128-float row twice: measured ~10% of
// read bandwidth lost). Column-outer inside a key, so only one V vector is
// live: kRows * kVecs accumulators + kRows broadcasts + 1.
// Named accumulators rather than arrays: SVE vectors are sizeless types,
// which C++ arrays cannot hold.
// kMemRows: more rows, kRows .. kRows + kMemRows - 1, each accumulated in
// its O row in memory (L1) rather than in registers, so that all the rows
// read each V row once.
template <int kRows, int kVecs, bool kSkipZeros, int kMemRows = 0, class D,
          class T>
HWY_INLINE void PvWideTile(D d, const float* HWY_RESTRICT p, size_t rt,
                           size_t num_keys, const T* HWY_RESTRICT v,
                           ptrdiff_t v_row_stride,
                           const float* HWY_RESTRICT alpha,
                           float* HWY_RESTRICT o, size_t o_row_stride) {
  static_assert(1 <= kRows && kRows <= 3, "kRows in [1, 3]");
  static_assert(1 <= kVecs && kVecs <= 8, "kVecs in [1, 8]");
  static_assert(0 <= kMemRows && kMemRows <= 3, "kMemRows in [0, 3]");
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V zero = hn::Zero(d);
  float* o_mem = kMemRows > 0 ? o + kRows * o_row_stride : o;
  for (int m = 0; m < kMemRows; ++m) {
    const V am = hn::Set(d, alpha[kRows + m]);
    float* row = o_mem + m * o_row_stride;
    for (size_t c = 0; c < kVecs; ++c) {
      hn::Store(hn::Mul(hn::Load(d, row + c * N), am), d, row + c * N);
    }
  }
#define SDPA_PVW_DECLARE(r)                                         \
  V a##r##0 = zero, a##r##1 = zero, a##r##2 = zero, a##r##3 = zero, \
    a##r##4 = zero, a##r##5 = zero, a##r##6 = zero, a##r##7 = zero;
  SDPA_PVW_DECLARE(0)
  SDPA_PVW_DECLARE(1)
  SDPA_PVW_DECLARE(2)
#undef SDPA_PVW_DECLARE
#define SDPA_PVW_LOAD(r, c)                                      \
  if constexpr (kRows > r && kVecs > c) {                        \
    a##r##c = hn::Mul(hn::Load(d, o + r * o_row_stride + c * N), \
                      hn::Set(d, alpha[r]));                     \
  }
#define SDPA_PVW_LOAD_ROW(r) \
  SDPA_PVW_LOAD(r, 0)        \
  SDPA_PVW_LOAD(r, 1)        \
  SDPA_PVW_LOAD(r, 2)        \
  SDPA_PVW_LOAD(r, 3)        \
  SDPA_PVW_LOAD(r, 4)        \
  SDPA_PVW_LOAD(r, 5)        \
  SDPA_PVW_LOAD(r, 6)        \
  SDPA_PVW_LOAD(r, 7)
  SDPA_PVW_LOAD_ROW(0)
  SDPA_PVW_LOAD_ROW(1)
  SDPA_PVW_LOAD_ROW(2)
#undef SDPA_PVW_LOAD_ROW
#undef SDPA_PVW_LOAD
  // V rows in four streams over the block, as QkDotBlock reads K
  // (StreamedRow), each prefetched kPrefetchValueRows ahead in its stream.
  for (size_t visit = 0; visit < num_keys; ++visit) {
    const size_t j = StreamedRow(visit, num_keys);
    const T* HWY_RESTRICT vj = v + static_cast<ptrdiff_t>(j) * v_row_stride;
    const float* HWY_RESTRICT pj = p + j * rt;
    PrefetchElems(
        vj + static_cast<ptrdiff_t>(kPrefetchValueRows) * v_row_stride,
        kVecs * N);
    const V b0 = hn::Set(d, pj[0]);
    const V b1 = kRows > 1 ? hn::Set(d, pj[1]) : b0;
    const V b2 = kRows > 2 ? hn::Set(d, pj[2]) : b0;
    const bool use0 = !kSkipZeros || !IsNegativeZero(pj[0]);
    const bool use1 = kRows > 1 && (!kSkipZeros || !IsNegativeZero(pj[1]));
    const bool use2 = kRows > 2 && (!kSkipZeros || !IsNegativeZero(pj[2]));
    bool use_mem[kMemRows + 1] = {};
    for (int m = 0; m < kMemRows; ++m) {
      use_mem[m] = !kSkipZeros || !IsNegativeZero(pj[kRows + m]);
    }
    if constexpr (kMemRows > 0) {
      // Opaque to the compiler, so that it does not hoist the row into
      // registers across keys (it would spill other accumulators instead).
      asm volatile("" : "+r"(o_mem));
    }
#define SDPA_PVW_COLUMN(c)                                                     \
  if constexpr (kVecs > c) {                                                   \
    const V vc = LoadWide(d, vj + c * N);                                      \
    if (use0) a0##c = hn::MulAdd(b0, vc, a0##c);                               \
    if constexpr (kRows > 1) {                                                 \
      if (use1) a1##c = hn::MulAdd(b1, vc, a1##c);                             \
    }                                                                          \
    if constexpr (kRows > 2) {                                                 \
      if (use2) a2##c = hn::MulAdd(b2, vc, a2##c);                             \
    }                                                                          \
    for (int m = 0; m < kMemRows; ++m) {                                       \
      float* acc = o_mem + m * o_row_stride + c * N;                           \
      if (use_mem[m]) {                                                        \
        hn::Store(hn::MulAdd(hn::Set(d, pj[kRows + m]), vc, hn::Load(d, acc)), \
                  d, acc);                                                     \
      }                                                                        \
    }                                                                          \
  }
    SDPA_PVW_COLUMN(0)
    SDPA_PVW_COLUMN(1)
    SDPA_PVW_COLUMN(2)
    SDPA_PVW_COLUMN(3)
    SDPA_PVW_COLUMN(4)
    SDPA_PVW_COLUMN(5)
    SDPA_PVW_COLUMN(6)
    SDPA_PVW_COLUMN(7)
#undef SDPA_PVW_COLUMN
  }
#define SDPA_PVW_STORE(r, c)                             \
  if constexpr (kRows > r && kVecs > c) {                \
    hn::Store(a##r##c, d, o + r * o_row_stride + c * N); \
  }
#define SDPA_PVW_STORE_ROW(r) \
  SDPA_PVW_STORE(r, 0)        \
  SDPA_PVW_STORE(r, 1)        \
  SDPA_PVW_STORE(r, 2)        \
  SDPA_PVW_STORE(r, 3)        \
  SDPA_PVW_STORE(r, 4)        \
  SDPA_PVW_STORE(r, 5)        \
  SDPA_PVW_STORE(r, 6)        \
  SDPA_PVW_STORE(r, 7)
  SDPA_PVW_STORE_ROW(0)
  SDPA_PVW_STORE_ROW(1)
  SDPA_PVW_STORE_ROW(2)
#undef SDPA_PVW_STORE_ROW
#undef SDPA_PVW_STORE
}

// Rows [0, rows) in tiles of at most kRows; one column chunk of kVecs. V
// rows may be f32 or 16-bit (T, read in place and widened).
template <int kRows, int kVecs, bool kSkipZeros, class D, class T>
HWY_INLINE void PvWideRows(D d, const float* HWY_RESTRICT p, size_t rt,
                           size_t rows, size_t num_keys,
                           const T* HWY_RESTRICT v, ptrdiff_t v_row_stride,
                           const float* HWY_RESTRICT alpha,
                           float* HWY_RESTRICT o, size_t o_row_stride) {
  size_t r = 0;
  if constexpr (kRows == 3) {
    // 4-6 rows (GQA 4:1, 5:1, 6:1): one pass over V, the rows past the third
    // in memory. As 3 + 1-3 rows the second tile reread V from L2 while no
    // memory request was in flight: AVX-512, one thread, Hq32 Hkv8 Tq1
    // Tk4096 42-47 -> 49-51 GB/s; H32 Tq5 / Tq6 Tk32768 22-25% / 21-24%
    // faster (docs/design.md).
    switch (rows) {
      case 4:
        PvWideTile<3, kVecs, kSkipZeros, 1>(d, p, rt, num_keys, v, v_row_stride,
                                            alpha, o, o_row_stride);
        return;
      case 5:
        PvWideTile<3, kVecs, kSkipZeros, 2>(d, p, rt, num_keys, v, v_row_stride,
                                            alpha, o, o_row_stride);
        return;
      case 6:
        PvWideTile<3, kVecs, kSkipZeros, 3>(d, p, rt, num_keys, v, v_row_stride,
                                            alpha, o, o_row_stride);
        return;
      default:
        break;
    }
  }
  for (; r + kRows <= rows; r += kRows) {
    PvWideTile<kRows, kVecs, kSkipZeros>(d, p + r, rt, num_keys, v,
                                         v_row_stride, alpha + r,
                                         o + r * o_row_stride, o_row_stride);
  }
  if constexpr (kRows > 1) {
    if (r < rows) {
      PvWideRows<kRows - 1, kVecs, kSkipZeros>(
          d, p + r, rt, rows - r, num_keys, v, v_row_stride, alpha + r,
          o + r * o_row_stride, o_row_stride);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_PV_TILE_INL_H_
