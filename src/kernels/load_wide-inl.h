// Vectors of K/V elements as f32, from f32 rows or from 16-bit rows that
// decoding reads in place (widened in registers instead of packed first).

#if defined(SDPA_KERNELS_LOAD_WIDE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_LOAD_WIDE_INL_H_
#undef SDPA_KERNELS_LOAD_WIDE_INL_H_
#else
#define SDPA_KERNELS_LOAD_WIDE_INL_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Whether F16 is widened by hardware (F16C, NEON, SVE) here. Highway
// 1.0.3's emulation elsewhere (SSE4, SSSE3, EMU128, SCALAR) turns Inf/NaN
// into large finite numbers; those targets widen F16 with an exact scalar
// conversion while packing.
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2) || \
    (HWY_ARCH_ARM_A64 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128)
constexpr bool kHardwareF16 = true;
#else
constexpr bool kHardwareF16 = false;
#endif

template <class D>
HWY_INLINE hn::Vec<D> LoadWide(D d, const float* HWY_RESTRICT p) {
  return hn::LoadU(d, p);
}

template <class D>
HWY_INLINE hn::Vec<D> LoadWide(D d, const hwy::bfloat16_t* HWY_RESTRICT p) {
  const hn::Rebind<hwy::bfloat16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, p));
}

template <class D>
HWY_INLINE hn::Vec<D> LoadWide(D d, const hwy::float16_t* HWY_RESTRICT p) {
  static_assert(kHardwareF16 || sizeof(D) == 0,
                "F16 is widened while packing on this target");
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, p));
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_LOAD_WIDE_INL_H_
