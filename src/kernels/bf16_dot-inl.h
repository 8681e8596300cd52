// What the BF16 dot-product kernels (qk_bf16_tile-inl.h, pv_bf16_tile-inl.h)
// share: AVX512_BF16's vdpbf16ps multiplies 16 lanes of BF16 *pairs* and
// adds both products to an f32 accumulator, twice the work of an f32 FMA at
// the same issue rate. Highway 1.0.3 has no such op and no target for it, so
// the AVX-512 target compiles these functions with the extra target
// attribute and runs them only where the CPU reports AVX512_BF16 (the
// AVX3_ZEN4 ISA, src/dispatch.cc).

#if defined(SDPA_KERNELS_BF16_DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_BF16_DOT_INL_H_
#undef SDPA_KERNELS_BF16_DOT_INL_H_
#else
#define SDPA_KERNELS_BF16_DOT_INL_H_
#endif

#include <hwy/highway.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif

// Highway's flags for the target being compiled plus AVX512_BF16, spelled
// out in full: GCC adds a function's target attribute to the enclosing
// pragma's, clang lets it replace them. HWY_TARGET_STR expands where the
// attribute is used, so one definition serves every target.
#ifndef SDPA_BF16_DOT_ATTR
#define SDPA_BF16_DOT_ATTR __attribute__((target(HWY_TARGET_STR ",avx512bf16")))
#endif

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {

// Whether this target has the BF16 dot kernels (run only where the CPU has
// AVX512_BF16).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr bool kBf16DotTarget = true;

// The 32-bit word at p (two BF16 elements), broadcast.
HWY_INLINE SDPA_BF16_DOT_ATTR __m512bh BroadcastPair(const uint16_t* p) {
  int32_t pair;
  memcpy(&pair, p, sizeof(pair));
  return reinterpret_cast<__m512bh>(_mm512_set1_epi32(pair));
}

// 32 BF16 elements (16 pairs) from p, unaligned.
HWY_INLINE SDPA_BF16_DOT_ATTR __m512bh LoadPairs(const uint16_t* p) {
  return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p));
}

// The first `count` (< 32) BF16 elements from p, zeros after them; nothing
// past them is read.
HWY_INLINE SDPA_BF16_DOT_ATTR __m512bh LoadPairsPartial(const uint16_t* p,
                                                        size_t count) {
  const __mmask32 first = static_cast<__mmask32>((uint32_t{1} << count) - 1);
  return reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(first, p));
}

HWY_INLINE SDPA_BF16_DOT_ATTR __m512 Dot(__m512 acc, __m512bh a, __m512bh b) {
  return _mm512_dpbf16_ps(acc, a, b);
}
#else
constexpr bool kBf16DotTarget = false;
#endif

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_BF16_DOT_INL_H_
