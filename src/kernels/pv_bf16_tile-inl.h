// P·V on BF16 dot products (vdpbf16ps, bf16_dot-inl.h) for BF16 V where the
// caller allows BF16 softmax weights (SDPA_FLAG_BF16_WEIGHTS): prefill only.
//
// The dot instruction adds the products of a *pair* of keys to each f32
// accumulator, so both operands come in key pairs. V is packed once per K/V
// block as words {v[2i][c], v[2i+1][c]} (PackValuePairs), P is rounded to
// BF16 in place as words {p[2i][r], p[2i+1][r]} (RoundWeightPairs), and the
// tile (PvBf16Tile) is PvTile's (pv_tile-inl.h) with a 32-bit broadcast of
// a row's weight pair in place of a weight and a dot in place of an FMA:
// half the instructions for the same keys. Rounding each weight to BF16
// changes it by at most 2^-8 of itself, so an output row (divided by the
// f32 sum of its unrounded weights) moves by at most 2^-8 of the largest
// |v| it sees.

#if defined(SDPA_KERNELS_PV_BF16_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_PV_BF16_TILE_INL_H_
#undef SDPA_KERNELS_PV_BF16_TILE_INL_H_
#else
#define SDPA_KERNELS_PV_BF16_TILE_INL_H_
#endif

#include <hwy/highway.h>
#include <stddef.h>
#include <stdint.h>

#include <algorithm>

#include "src/kernels/bf16_dot-inl.h"
#include "src/kernels/pv_tile-inl.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL

// Lanes of x (BF16 bits, zero-extended to 32) that hold Inf/NaN, |x| >=
// Inf, or a nonzero magnitude below 2^-64 (exponent field 63): |x| - 1 <
// 2^-64 - 1 unsigned, where 0 wraps around to the top.
HWY_INLINE SDPA_BF16_DOT_ATTR __mmask16 InfNaNOrTiny(__m512i x) {
  const __m512i abs = _mm512_and_si512(x, _mm512_set1_epi32(0x7fff));
  return static_cast<__mmask16>(
      _mm512_cmpge_epu32_mask(abs, _mm512_set1_epi32(0x7f80)) |
      _mm512_cmplt_epu32_mask(_mm512_sub_epi32(abs, _mm512_set1_epi32(1)),
                              _mm512_set1_epi32(0x1f80 - 1)));
}

// BF16 rows [0, keys) of `dim` elements (unit element stride, rows
// row_stride apart) as key pairs: word c of pair row i (at out + i *
// out_stride, 64-byte aligned; out_stride a multiple of 16) holds
// {v[2i][c], v[2i+1][c]}, the even key in the low half; an odd last key's
// partner and the columns [dim, out_stride) are 0. False (the caller then
// takes the f32 path for the block) if V holds Inf or NaN, as 0 * Inf from
// a weight of 0 would reach rows that cannot see the key, or a nonzero
// element below 2^-64 in magnitude: the dot instruction reads subnormal
// inputs and writes subnormal results as 0, and with |v| >= 2^-64 only
// products of weights below 2^-62 can flush (each less than 2^-62 of
// max|v|, far inside the bound that rounding the weights claims).
HWY_NOINLINE SDPA_BF16_DOT_ATTR bool PackValuePairs(
    const uint16_t* HWY_RESTRICT v, ptrdiff_t row_stride, size_t keys,
    size_t dim, uint32_t* HWY_RESTRICT out, size_t out_stride) {
  __mmask16 refused = 0;
  for (size_t i = 0; 2 * i < keys; ++i) {
    const uint16_t* HWY_RESTRICT even =
        v + static_cast<ptrdiff_t>(2 * i) * row_stride;
    const bool has_odd = 2 * i + 1 < keys;
    uint32_t* HWY_RESTRICT words = out + i * out_stride;
    for (size_t c = 0; c < out_stride; c += 16) {
      const size_t n = c < dim ? std::min<size_t>(16, dim - c) : 0;
      const __mmask16 load = static_cast<__mmask16>((uint32_t{1} << n) - 1);
      const __m512i lo =
          _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(load, even + c));
      const __m512i hi = has_odd
                             ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(
                                   load, even + row_stride + c))
                             : _mm512_setzero_si512();
      refused |= InfNaNOrTiny(lo) | InfNaNOrTiny(hi);
      _mm512_store_si512(words + c,
                         _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
  }
  return refused == 0;
}

// The softmax weights p[kk * rt + lane] of keys kk in [0, num_keys), as
// BF16 pairs (rounded to nearest even) in place: the 32-bit word `lane` of
// pair row i is {p[2i - offset][lane], p[2i + 1 - offset][lane]}, the even
// one in the low half, weight 0 for keys outside [0, num_keys) (offset 1:
// the first key shares its pair with the key before it). Lanes [0, width),
// width a multiple of 16; p is 64-byte aligned, rt a multiple of 16. Returns
// the number of pairs. Row i is written after rows 2i - offset and
// 2i + 1 - offset, the only ones it depends on, are read.
HWY_NOINLINE SDPA_BF16_DOT_ATTR size_t RoundWeightPairs(float* HWY_RESTRICT p,
                                                        size_t rt, size_t width,
                                                        size_t num_keys,
                                                        size_t offset) {
  // cvtne2ps puts the first pair member's 16 BF16 in elements 0-15 and the
  // second's in 16-31; this interleaves them into words.
  alignas(64) static constexpr uint16_t kInterleave[32] = {
      0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
      8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  const size_t pairs = (num_keys + offset + 1) / 2;
  for (size_t i = 0; i < pairs; ++i) {
    // Keys 2i - offset (the low half; none for offset 1 and i = 0) and
    // 2i + 1 - offset.
    const size_t second = 2 * i + 1 - offset;
    const bool has_first = second > 0;
    const bool has_second = second < num_keys;
    const float* HWY_RESTRICT row0 = p + (has_first ? second - 1 : 0) * rt;
    const float* HWY_RESTRICT row1 = p + second * rt;
    float* HWY_RESTRICT dst = p + i * rt;
    for (size_t lane = 0; lane < width; lane += 16) {
      const __m512 w0 =
          has_first ? _mm512_load_ps(row0 + lane) : _mm512_setzero_ps();
      const __m512 w1 =
          has_second ? _mm512_load_ps(row1 + lane) : _mm512_setzero_ps();
      const __m512i halves =
          reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(w1, w0));
      _mm512_store_si512(dst + lane,
                         _mm512_permutexvar_epi16(interleave, halves));
    }
  }
  return pairs;
}

// o[r][c] = o[r][c] * alpha[r] + sum_i Dot(pp[i * rt + r], vp row i) for
// r < kRows and kVecs vectors of columns: PvTile on key pairs.
template <int kRows, int kVecs>
HWY_INLINE SDPA_BF16_DOT_ATTR void PvBf16Tile(const uint32_t* HWY_RESTRICT pp,
                                              size_t rt, size_t pairs,
                                              const uint32_t* HWY_RESTRICT vp,
                                              size_t vp_stride,
                                              const float* HWY_RESTRICT alpha,
                                              float* HWY_RESTRICT o,
                                              size_t o_row_stride) {
  static_assert(1 <= kRows && kRows <= 6, "kRows in [1, 6]");
  static_assert(1 <= kVecs && kVecs <= 4, "kVecs in [1, 4]");
  constexpr size_t N = 16;
#define SDPA_PVB_LOAD(r)                                                      \
  __m512 a##r##0 = _mm512_setzero_ps(), a##r##1 = a##r##0, a##r##2 = a##r##0, \
         a##r##3 = a##r##0;                                                   \
  if constexpr (kRows > r) {                                                  \
    const __m512 scale = _mm512_set1_ps(alpha[r]);                            \
    const float* HWY_RESTRICT orow = o + r * o_row_stride;                    \
    a##r##0 = _mm512_mul_ps(_mm512_load_ps(orow), scale);                     \
    if constexpr (kVecs > 1)                                                  \
      a##r##1 = _mm512_mul_ps(_mm512_load_ps(orow + N), scale);               \
    if constexpr (kVecs > 2)                                                  \
      a##r##2 = _mm512_mul_ps(_mm512_load_ps(orow + 2 * N), scale);           \
    if constexpr (kVecs > 3)                                                  \
      a##r##3 = _mm512_mul_ps(_mm512_load_ps(orow + 3 * N), scale);           \
  }
  SDPA_PVB_LOAD(0)
  SDPA_PVB_LOAD(1)
  SDPA_PVB_LOAD(2)
  SDPA_PVB_LOAD(3)
  SDPA_PVB_LOAD(4)
  SDPA_PVB_LOAD(5)
#undef SDPA_PVB_LOAD
  for (size_t i = 0; i < pairs; ++i) {
    const uint32_t* HWY_RESTRICT vi = vp + i * vp_stride;
    const uint16_t* HWY_RESTRICT pi =
        reinterpret_cast<const uint16_t*>(pp + i * rt);
    const __m512bh v0 = reinterpret_cast<__m512bh>(_mm512_load_si512(vi));
    const __m512bh v1 =
        kVecs > 1 ? reinterpret_cast<__m512bh>(_mm512_load_si512(vi + N)) : v0;
    const __m512bh v2 =
        kVecs > 2 ? reinterpret_cast<__m512bh>(_mm512_load_si512(vi + 2 * N))
                  : v0;
    const __m512bh v3 =
        kVecs > 3 ? reinterpret_cast<__m512bh>(_mm512_load_si512(vi + 3 * N))
                  : v0;
#define SDPA_PVB_STEP(r)                                    \
  if constexpr (kRows > r) {                                \
    const __m512bh b = BroadcastPair(pi + 2 * r);           \
    a##r##0 = Dot(a##r##0, b, v0);                          \
    if constexpr (kVecs > 1) a##r##1 = Dot(a##r##1, b, v1); \
    if constexpr (kVecs > 2) a##r##2 = Dot(a##r##2, b, v2); \
    if constexpr (kVecs > 3) a##r##3 = Dot(a##r##3, b, v3); \
  }
    SDPA_PVB_STEP(0)
    SDPA_PVB_STEP(1)
    SDPA_PVB_STEP(2)
    SDPA_PVB_STEP(3)
    SDPA_PVB_STEP(4)
    SDPA_PVB_STEP(5)
#undef SDPA_PVB_STEP
  }
#define SDPA_PVB_STORE(r)                                            \
  if constexpr (kRows > r) {                                         \
    float* HWY_RESTRICT orow = o + r * o_row_stride;                 \
    _mm512_store_ps(orow, a##r##0);                                  \
    if constexpr (kVecs > 1) _mm512_store_ps(orow + N, a##r##1);     \
    if constexpr (kVecs > 2) _mm512_store_ps(orow + 2 * N, a##r##2); \
    if constexpr (kVecs > 3) _mm512_store_ps(orow + 3 * N, a##r##3); \
  }
  SDPA_PVB_STORE(0)
  SDPA_PVB_STORE(1)
  SDPA_PVB_STORE(2)
  SDPA_PVB_STORE(3)
  SDPA_PVB_STORE(4)
  SDPA_PVB_STORE(5)
#undef SDPA_PVB_STORE
}

// Rows [0, rows) of one column chunk of kVecs vectors, in tiles of
// FirstTileRows sizes (as PvRows).
template <int kRows, int kVecs>
HWY_INLINE SDPA_BF16_DOT_ATTR void PvBf16Rows(
    const uint32_t* HWY_RESTRICT pp, size_t rt, size_t rows, size_t pairs,
    const uint32_t* HWY_RESTRICT vp, size_t vp_stride,
    const float* HWY_RESTRICT alpha, float* HWY_RESTRICT o,
    size_t o_row_stride) {
  size_t r = 0;
  for (; r < rows && FirstTileRows(rows - r, kRows) == kRows; r += kRows) {
    PvBf16Tile<kRows, kVecs>(pp + r, rt, pairs, vp, vp_stride, alpha + r,
                             o + r * o_row_stride, o_row_stride);
  }
  if constexpr (kRows > 1) {
    if (r < rows) {
      PvBf16Rows<kRows - 1, kVecs>(pp + r, rt, rows - r, pairs, vp, vp_stride,
                                   alpha + r, o + r * o_row_stride,
                                   o_row_stride);
    }
  }
}

// The whole update of `rows` rows and num_vecs vector columns, from weight
// pairs pp (RoundWeightPairs) and V pairs vp (PackValuePairs, vp_stride
// words a pair row): column chunks of 4 vectors, then 2, then 1 (as
// PvColumns).
HWY_NOINLINE SDPA_BF16_DOT_ATTR void PvBf16Block(
    const uint32_t* HWY_RESTRICT pp, size_t rt, size_t rows, size_t pairs,
    const uint32_t* HWY_RESTRICT vp, size_t vp_stride, size_t num_vecs,
    const float* HWY_RESTRICT alpha, float* HWY_RESTRICT o,
    size_t o_row_stride) {
  constexpr int kRows = 6, kVecs = 4;
  constexpr size_t N = 16;
  size_t c = 0;
  for (; c + kVecs <= num_vecs; c += kVecs) {
    PvBf16Rows<kRows, kVecs>(pp, rt, rows, pairs, vp + c * N, vp_stride, alpha,
                             o + c * N, o_row_stride);
  }
  if (c + 2 <= num_vecs) {
    PvBf16Rows<kRows, 2>(pp, rt, rows, pairs, vp + c * N, vp_stride, alpha,
                         o + c * N, o_row_stride);
    c += 2;
  }
  for (; c < num_vecs; ++c) {
    PvBf16Rows<kRows, 1>(pp, rt, rows, pairs, vp + c * N, vp_stride, alpha,
                         o + c * N, o_row_stride);
  }
}

#endif  // HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_PV_BF16_TILE_INL_H_
