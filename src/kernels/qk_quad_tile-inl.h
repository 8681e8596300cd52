// Q·Kᵀ for decoding tiles of five to eight rows on AVX-512 (8-query
// decoding, 8:1 GQA): the dot form (QkDotBlock) with the reduction taken
// out of the loop over keys. A vector holds four query rows x four
// consecutive head-dim elements; each K row's four elements are broadcast
// to the four 128-bit blocks (LoadDup128: a load, no shuffle); a tile of 8
// keys x two row quads keeps 16 accumulators over the head dim. The scores
// are then summed four keys at a time within 128-bit blocks
// (BlockSumsOfFour) and put in S[key][row] order by one two-table permute
// per 16 scores. QkDotBlock reduces across 512 bits per four scores: ~7
// shuffles per 4 scores where this takes ~3.5 per 8, and the shuffles share
// a port with one of the two FMA pipes.
//
// A tile's 8 keys are two adjacent rows from each of four streams over the
// block (as StreamedRow's four streams for the few-row tiles): eight
// adjacent rows at a time read as one strided pattern and ran no faster
// from memory than QkDotBlock. Measured on the Intel Xeon (AVX-512, D128,
// one core unless stated), against QkDotBlock:
// - K/V in L2 (H1 Tk1024 Tq8, a harness calling sdpa_attention): 44-49 ->
//   37 ns per key; in row order instead of streams 34.5-37.
// - sdpa_bench H32 Tq8 Tk32768 (1 GiB), medians of 3, three interleaved
//   rounds: 10.1-10.3 -> 11.4 GB/s, two threads 19.3-20.5 -> 22.1-22.2;
//   Tk4096 10.3-12.5 -> 11.6-13.0, two threads 22.0-29.7 -> 26.0-31.7.
// - GQA Hq64 Hkv8 Tq1 Tk32768 (harness): 9.2-10.2 -> 11.1 GB/s; Tk4096
//   (32 MiB, in L3) 17.1-17.9 either way.
#if defined(SDPA_KERNELS_QK_QUAD_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_QK_QUAD_TILE_INL_H_
#undef SDPA_KERNELS_QK_QUAD_TILE_INL_H_
#else
#define SDPA_KERNELS_QK_QUAD_TILE_INL_H_
#endif

#include <hwy/highway.h>
#include <stddef.h>
#include <string.h>

#include "src/kernels/qk_tile-inl.h"
#include "src/kernels/row_stream.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows a quad tile takes (two quads), and the longest padded head dim: Q
// is repacked into quads on the stack, 2 x 4 x kQuadMaxDim floats.
constexpr size_t kQuadTileRows = 8;
constexpr size_t kQuadMaxDim = 256;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr bool kQuadTiles = true;

// qp[(g * steps + t) * 16 + 4 * i + j] = q[(4 * g + i) * dim_padded + 4 * t
// + j] for quads g < 2, steps t < dim_padded / 4: block i of step t holds
// four elements of row 4g + i; rows past `rows` are zero.
HWY_INLINE void PackQuads(const float* HWY_RESTRICT q, size_t rows,
                          size_t dim_padded, float* HWY_RESTRICT qp) {
  const size_t steps = dim_padded / 4;
  for (size_t g = 0; g < 2; ++g) {
    for (size_t t = 0; t < steps; ++t) {
      for (size_t i = 0; i < 4; ++i) {
        float* HWY_RESTRICT block = qp + (g * steps + t) * 16 + 4 * i;
        const size_t r = 4 * g + i;
        if (r < rows) {
          memcpy(block, q + r * dim_padded + 4 * t, 4 * sizeof(float));
        } else {
          memset(block, 0, 4 * sizeof(float));
        }
      }
    }
  }
}

// Scores of kCount <= 4 keys from the block sums of quad 0 (rows 0-3) and
// quad 1 (rows 4-7), whose lane 4i + j is row 4g + i's score of key j:
// key j's rows 0-7 to pair[j / 2] + j % 2 * rt (keys come in pairs of
// adjacent S rows).
template <int kCount, class D, class V = hn::Vec<D>>
HWY_INLINE void StoreQuadScores(D d, V quad0, V quad1,
                                float* HWY_RESTRICT const* pair, size_t rt) {
  // Lane 8j' + i of the pair: row i of key j' (+ 2); bit 4 picks quad 1.
  alignas(64) static constexpr int32_t kKeys01[16] = {
      0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29};
  alignas(64) static constexpr int32_t kKeys23[16] = {
      2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31};
  const hn::Half<D> dh;
  const V keys01{
      _mm512_permutex2var_ps(quad0.raw, _mm512_load_si512(kKeys01), quad1.raw)};
  hn::StoreU(hn::LowerHalf(dh, keys01), dh, pair[0]);
  if constexpr (kCount > 1) {
    hn::StoreU(hn::UpperHalf(dh, keys01), dh, pair[0] + rt);
  }
  if constexpr (kCount > 2) {
    const V keys23{_mm512_permutex2var_ps(quad0.raw, _mm512_load_si512(kKeys23),
                                          quad1.raw)};
    hn::StoreU(hn::LowerHalf(dh, keys23), dh, pair[1]);
    if constexpr (kCount > 3) {
      hn::StoreU(hn::UpperHalf(dh, keys23), dh, pair[1] + rt);
    }
  }
  (void)d;
}

// The keys of one tile: kKeys <= 8 keys in pairs of adjacent rows, pair i
// = K rows first[i] and first[i] + 1 (the last pair of an odd kKeys: one
// row), their scores to S rows first[i] and first[i] + 1.
struct QuadTileKeys {
  size_t first[4];
};

// s[row * rt + r] for the tile's K rows `row` and r < 8, from quads qp
// (PackQuads) and K rows of 4 * steps floats (steps a multiple of 4: whole
// lines). Where ahead != 0, rows first[i] + ahead and + 1 of each pair are
// prefetched from k_stream (within its count), one line of each row per
// line of the tile's K rows. Each pair is one pointer and the stride, so
// that the tile's pointers fit the general registers: with eight row
// pointers GCC spilled them to vector registers and then Q to the stack.
template <int kKeys, class D>
HWY_INLINE void QkQuadTile(D d, const float* HWY_RESTRICT qp, size_t steps,
                           const RowStream& k_stream, const QuadTileKeys& keys,
                           float* HWY_RESTRICT s, size_t rt, size_t ahead) {
  static_assert(1 <= kKeys && kKeys <= 8, "kKeys in [1, 8]");
  using V = hn::Vec<D>;
  const ptrdiff_t stride = k_stream.stride;
  // Pair i's first row, advanced one line per line of steps.
  const float* pair_rows[4];
  for (int i = 0; i < 4; ++i) {
    const size_t row = 2 * i < kKeys ? keys.first[i] : keys.first[0];
    pair_rows[i] = k_stream.rows + static_cast<ptrdiff_t>(row) * stride;
  }
  const float* HWY_RESTRICT p0 = pair_rows[0];
  const float* HWY_RESTRICT p1 = pair_rows[1];
  const float* HWY_RESTRICT p2 = pair_rows[2];
  const float* HWY_RESTRICT p3 = pair_rows[3];
  const ptrdiff_t ahead_offset = static_cast<ptrdiff_t>(ahead) * stride;
  const float* HWY_RESTRICT q_quad0 = qp;
  const float* HWY_RESTRICT q_quad1 = qp + steps * 16;
  // aKK: quad 0 (rows 0-3) x key KK, bKK: quad 1 (rows 4-7).
  V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
    a7 = a0;
  V b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
  for (size_t line = 0; line < steps / 4; ++line) {
    if (ahead != 0) {
#define SDPA_QUAD_PREFETCH(i, p)               \
  if constexpr (kKeys > 2 * i) {               \
    PrefetchLine(p + ahead_offset);            \
    if constexpr (kKeys > 2 * i + 1) {         \
      PrefetchLine(p + ahead_offset + stride); \
    }                                          \
  }
      SDPA_QUAD_PREFETCH(0, p0)
      SDPA_QUAD_PREFETCH(1, p1)
      SDPA_QUAD_PREFETCH(2, p2)
      SDPA_QUAD_PREFETCH(3, p3)
#undef SDPA_QUAD_PREFETCH
    }
    for (size_t e = 0; e < kFloatsPerLine; e += 4) {
      const V q0 = hn::Load(d, q_quad0 + 4 * e);
      const V q1 = hn::Load(d, q_quad1 + 4 * e);
#define SDPA_QUAD_STEP(kk, p, row)               \
  if constexpr (kKeys > kk) {                    \
    const V kv = hn::LoadDup128(d, p + row + e); \
    a##kk = hn::MulAdd(q0, kv, a##kk);           \
    b##kk = hn::MulAdd(q1, kv, b##kk);           \
  }
      SDPA_QUAD_STEP(0, p0, 0)
      SDPA_QUAD_STEP(1, p0, stride)
      SDPA_QUAD_STEP(2, p1, 0)
      SDPA_QUAD_STEP(3, p1, stride)
      SDPA_QUAD_STEP(4, p2, 0)
      SDPA_QUAD_STEP(5, p2, stride)
      SDPA_QUAD_STEP(6, p3, 0)
      SDPA_QUAD_STEP(7, p3, stride)
#undef SDPA_QUAD_STEP
    }
    p0 += kFloatsPerLine;
    p1 += kFloatsPerLine;
    p2 += kFloatsPerLine;
    p3 += kFloatsPerLine;
    q_quad0 += 4 * kFloatsPerLine;
    q_quad1 += 4 * kFloatsPerLine;
  }
  float* pairs[4];
  for (int i = 0; i < 4; ++i) {
    pairs[i] = s + (2 * i < kKeys ? keys.first[i] : 0) * rt;
  }
  // Keys past kKeys hold zeros; only kKeys keys' scores are stored.
  constexpr int kFirst = kKeys < 4 ? kKeys : 4;
  StoreQuadScores<kFirst>(d, BlockSumsOfFour(d, a0, a1, a2, a3),
                          BlockSumsOfFour(d, b0, b1, b2, b3), pairs, rt);
  if constexpr (kKeys > 4) {
    StoreQuadScores<kKeys - 4>(d, BlockSumsOfFour(d, a4, a5, a6, a7),
                               BlockSumsOfFour(d, b4, b5, b6, b7), pairs + 2,
                               rt);
  }
}

// QkDotBlock for f32 K rows, rows in (4, 8] and dim_padded <= kQuadMaxDim:
// tiles of 8 keys, then 4, then single keys. The first num_keys / 8 * 8
// keys are visited in four streams, one per quarter of them, two adjacent
// keys of each per tile (as StreamedRow, in pairs); the rest in order.
// Prefetches as QkDotBlock's (PrefetchForDotKey): K rows kPrefetchKeys / 4
// x 2 ahead in their stream within [0, k_reach), one line of each of a
// tile's rows at a time; `then` once per key, in row order (the order of
// the tall P·V tiles that follow).
template <class D, class TV>
HWY_NOINLINE void QkQuadBlock(D d, const float* HWY_RESTRICT q, size_t rows,
                              size_t dim_padded, const float* HWY_RESTRICT k,
                              ptrdiff_t k_row_stride, size_t num_keys,
                              size_t k_reach, const RowStreamOf<TV>* then,
                              size_t then_rows, bool then_half_early,
                              float* HWY_RESTRICT s, size_t rt) {
  HWY_DASSERT(4 < rows && rows <= kQuadTileRows && rt >= kQuadTileRows);
  HWY_DASSERT(dim_padded % 16 == 0 && dim_padded <= kQuadMaxDim);
  HWY_ALIGN float qp[2 * 4 * kQuadMaxDim];
  PackQuads(q, rows, dim_padded, qp);
  const size_t steps = dim_padded / 4;
  const RowStream k_stream{k, k_row_stride, dim_padded, k_reach};
  // The `then` prefetches of keys [first, first + count), in row order.
  const auto prefetch_values = [&](size_t first, size_t count) {
    for (size_t i = first; i < first + count; ++i) {
      PrefetchValuesForKey(i, i, num_keys, then, then_rows, then_half_early,
                           /*streamed=*/false);
    }
  };
  const size_t tiled = num_keys / 8 * 8;
  const size_t stripe = tiled / 4;
  for (size_t tile = 0; tile < tiled / 8; ++tile) {
    QuadTileKeys keys;
    for (size_t i = 0; i < 4; ++i) keys.first[i] = i * stripe + 2 * tile;
    constexpr size_t kAhead = kPrefetchKeys / 4 * 2;
    const size_t last = keys.first[3] + kAhead + 1;
    prefetch_values(8 * tile, 8);
    QkQuadTile<8>(d, qp, steps, k_stream, keys, s, rt,
                  last < k_reach ? kAhead : 0);
  }
  size_t kk = tiled;
  if (kk + 4 <= num_keys) {
    prefetch_values(kk, 4);
    QkQuadTile<4>(d, qp, steps, k_stream, QuadTileKeys{{kk, kk + 2, 0, 0}}, s,
                  rt, 0);
    kk += 4;
  }
  for (; kk < num_keys; ++kk) {
    prefetch_values(kk, 1);
    QkQuadTile<1>(d, qp, steps, k_stream, QuadTileKeys{{kk, 0, 0, 0}}, s, rt,
                  0);
  }
}
#else
constexpr bool kQuadTiles = false;
#endif

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_QK_QUAD_TILE_INL_H_
