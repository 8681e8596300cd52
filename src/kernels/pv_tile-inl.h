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

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// kRows x kVecs accumulators. p points at P[0][r0], v at V[0][c0] (rows of
// at least kVecs * N readable floats), o at O[r0][c0] (vector-aligned),
// alpha at alpha[r0].
// kSkipZeros: a weight of -0.0 marks a key hidden from the row
// (MarkHiddenKeys), which then contributes nothing even where V holds
// Inf/NaN; a visible key of weight +0 still adds 0 * V. Slower, used only
// for blocks that are both masked and hold non-finite V.
// kPrefetch: decoding streams V from memory with little work per row, so the
// hardware prefetchers fall behind; fetch kPrefetchValueRows rows ahead.
constexpr size_t kPrefetchValueRows = 32;

HWY_INLINE bool IsNegativeZero(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof(bits));
  return bits == 0x80000000u;
}

template <int kRows, int kVecs, bool kSkipZeros, bool kPrefetch, class D>
HWY_INLINE void PvTile(D d, const float* HWY_RESTRICT p, size_t rt,
                       size_t num_keys, const float* HWY_RESTRICT v,
                       ptrdiff_t v_row_stride, const float* HWY_RESTRICT alpha,
                       float* HWY_RESTRICT o, size_t o_row_stride) {
  static_assert(1 <= kRows && kRows <= 6, "kRows in [1, 6]");
  static_assert(1 <= kVecs && kVecs <= 4, "kVecs in [1, 4]");
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
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
#undef SDPA_PV_LOAD
  for (size_t j = 0; j < num_keys; ++j) {
    const float* HWY_RESTRICT vj = v + static_cast<ptrdiff_t>(j) * v_row_stride;
    const float* HWY_RESTRICT pj = p + j * rt;
    if constexpr (kPrefetch) {
      for (size_t c = 0; c < kVecs * N; c += 64 / sizeof(float)) {
        hwy::Prefetch(
            vj + static_cast<ptrdiff_t>(kPrefetchValueRows) * v_row_stride + c);
      }
    }
    const V v0 = hn::LoadU(d, vj);
    const V v1 = kVecs > 1 ? hn::LoadU(d, vj + N) : v0;
    const V v2 = kVecs > 2 ? hn::LoadU(d, vj + 2 * N) : v0;
    const V v3 = kVecs > 3 ? hn::LoadU(d, vj + 3 * N) : v0;
#define SDPA_PV_ACC(r, c) a##r##c = hn::MulAdd(b, v##c, a##r##c);
#define SDPA_PV_STEP(r)                          \
  if constexpr (kRows > r) {                     \
    if (!kSkipZeros || !IsNegativeZero(pj[r])) { \
      const V b = hn::Set(d, pj[r]);             \
      SDPA_PV_ACC(r, 0)                          \
      if constexpr (kVecs > 1) {                 \
        SDPA_PV_ACC(r, 1)                        \
      }                                          \
      if constexpr (kVecs > 2) {                 \
        SDPA_PV_ACC(r, 2)                        \
      }                                          \
      if constexpr (kVecs > 3) {                 \
        SDPA_PV_ACC(r, 3)                        \
      }                                          \
    }                                            \
  }
    SDPA_PV_STEP(0)
    SDPA_PV_STEP(1)
    SDPA_PV_STEP(2)
    SDPA_PV_STEP(3)
    SDPA_PV_STEP(4)
    SDPA_PV_STEP(5)
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
#undef SDPA_PV_STORE
}

// Rows [0, rows), one column chunk of exactly kVecs vectors.
template <int kRows, int kVecs, bool kSkipZeros, bool kPrefetch, class D>
HWY_INLINE void PvRows(D d, const float* HWY_RESTRICT p, size_t rt, size_t rows,
                       size_t num_keys, const float* HWY_RESTRICT v,
                       ptrdiff_t v_row_stride, const float* HWY_RESTRICT alpha,
                       float* HWY_RESTRICT o, size_t o_row_stride) {
  size_t r = 0;
  for (; r + kRows <= rows; r += kRows) {
    PvTile<kRows, kVecs, kSkipZeros, kPrefetch>(
        d, p + r, rt, num_keys, v, v_row_stride, alpha + r,
        o + r * o_row_stride, o_row_stride);
  }
  if constexpr (kRows > 1) {
    if (r < rows) {
      // One shorter tile for the remaining rows.
      PvRows<kRows - 1, kVecs, kSkipZeros, kPrefetch>(
          d, p + r, rt, rows - r, num_keys, v, v_row_stride, alpha + r,
          o + r * o_row_stride, o_row_stride);
    }
  }
}

// The whole update for `rows` rows and num_vecs vector columns.
template <int kRows, int kVecs, bool kSkipZeros, bool kPrefetch, class D>
HWY_INLINE void PvBlock(D d, const float* HWY_RESTRICT p, size_t rt,
                        size_t rows, size_t num_keys,
                        const float* HWY_RESTRICT v, ptrdiff_t v_row_stride,
                        size_t num_vecs, const float* HWY_RESTRICT alpha,
                        float* HWY_RESTRICT o, size_t o_row_stride) {
  const size_t N = hn::Lanes(d);
  size_t c = 0;
  for (; c + kVecs <= num_vecs; c += kVecs) {
    PvRows<kRows, kVecs, kSkipZeros, kPrefetch>(d, p, rt, rows, num_keys,
                                                v + c * N, v_row_stride, alpha,
                                                o + c * N, o_row_stride);
  }
  for (; c < num_vecs; ++c) {
    PvRows<kRows, 1, kSkipZeros, kPrefetch>(d, p, rt, rows, num_keys, v + c * N,
                                            v_row_stride, alpha, o + c * N,
                                            o_row_stride);
  }
}

// Decoding (few rows): each V row read in one pass, up to 8 vectors wide, so
// that its cache lines are requested together and prefetched once (the
// kVecs <= 4 tiles above pass over a 128-float row twice: measured ~10% of
// read bandwidth lost). Column-outer inside a key, so only one V vector is
// live: kRows * kVecs accumulators + kRows broadcasts + 1.
template <int kRows, int kVecs, bool kSkipZeros, class D>
HWY_INLINE void PvWideTile(D d, const float* HWY_RESTRICT p, size_t rt,
                           size_t num_keys, const float* HWY_RESTRICT v,
                           ptrdiff_t v_row_stride,
                           const float* HWY_RESTRICT alpha,
                           float* HWY_RESTRICT o, size_t o_row_stride) {
  static_assert(1 <= kRows && kRows * kVecs <= 24, "register budget");
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  V acc[kRows][kVecs];
  for (int r = 0; r < kRows; ++r) {
    const V scale = hn::Set(d, alpha[r]);
    for (int c = 0; c < kVecs; ++c) {
      acc[r][c] = hn::Mul(hn::Load(d, o + r * o_row_stride + c * N), scale);
    }
  }
  for (size_t j = 0; j < num_keys; ++j) {
    const float* HWY_RESTRICT vj = v + static_cast<ptrdiff_t>(j) * v_row_stride;
    const float* HWY_RESTRICT pj = p + j * rt;
    for (size_t c = 0; c < kVecs * N; c += 64 / sizeof(float)) {
      hwy::Prefetch(
          vj + static_cast<ptrdiff_t>(kPrefetchValueRows) * v_row_stride + c);
    }
    V b[kRows];
    bool use[kRows];
    for (int r = 0; r < kRows; ++r) {
      b[r] = hn::Set(d, pj[r]);
      use[r] = !kSkipZeros || !IsNegativeZero(pj[r]);
    }
    for (int c = 0; c < kVecs; ++c) {
      const V vc = hn::LoadU(d, vj + c * N);
      for (int r = 0; r < kRows; ++r) {
        if (use[r]) acc[r][c] = hn::MulAdd(b[r], vc, acc[r][c]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < kVecs; ++c) {
      hn::Store(acc[r][c], d, o + r * o_row_stride + c * N);
    }
  }
}

// Rows [0, rows) in tiles of at most kRows; one column chunk of kVecs.
template <int kRows, int kVecs, bool kSkipZeros, class D>
HWY_INLINE void PvWideRows(D d, const float* HWY_RESTRICT p, size_t rt,
                           size_t rows, size_t num_keys,
                           const float* HWY_RESTRICT v, ptrdiff_t v_row_stride,
                           const float* HWY_RESTRICT alpha,
                           float* HWY_RESTRICT o, size_t o_row_stride) {
  size_t r = 0;
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
