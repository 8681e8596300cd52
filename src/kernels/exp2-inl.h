// A fast 2^x for the online softmax, where x = score - running max <= 0.
//
// Contract: exact 2^0 = 1 (so a row whose max did not change is rescaled by
// exactly 1), 2^-inf = 0 exactly, results below 2^-126 flush to 0, NaN in ->
// NaN out. Max relative error 1.7e-7 on [-126, 0] (Cephes exp2f polynomial
// on the reduced range [-0.5, 0.5]), well inside what fp32 attention needs,
// at about half the cost of hwy's 1-ULP Exp.

#if defined(SDPA_KERNELS_EXP2_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SDPA_KERNELS_EXP2_INL_H_
#undef SDPA_KERNELS_EXP2_INL_H_
#else
#define SDPA_KERNELS_EXP2_INL_H_
#endif

#include <hwy/highway.h>

#include <type_traits>

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D, class V = hn::Vec<D>>
HWY_INLINE V FastExp2(D d, V x) {
  const hn::RebindToSigned<D> di;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  const V xr = std::is_same_v<V, hn::Vec512<float>>
                   ? hn::Max(hn::Set(d, -160.0f), x)
                   : x;
#else
  const V xr = x;
#endif
  const V rounded = hn::Round(xr);
  const V fraction = hn::Sub(xr, rounded);  // [-0.5, 0.5]; NaN stays NaN
  V poly = hn::Set(d, 1.535336188319500e-4f);
  poly = hn::MulAdd(poly, fraction, hn::Set(d, 1.339887440266574e-3f));
  poly = hn::MulAdd(poly, fraction, hn::Set(d, 9.618437357674640e-3f));
  poly = hn::MulAdd(poly, fraction, hn::Set(d, 5.550332471162809e-2f));
  poly = hn::MulAdd(poly, fraction, hn::Set(d, 2.402264791363012e-1f));
  poly = hn::MulAdd(poly, fraction, hn::Set(d, 6.931472028550421e-1f));
  poly = hn::MulAdd(poly, fraction, hn::Set(d, 1.0f));
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if constexpr (std::is_same_v<V, hn::Vec512<float>>) {
    // AVX-512 scales by 2^rounded in one instruction (vscalefps) instead of
    // building 2^n from integer bits: 3 fewer operations per vector, the
    // same bits, as rounded >= -126 wherever the result is kept.
    // hn::Round(-inf) = -inf would make `fraction` NaN, so the -inf lanes
    // (flushed below anyway) are clamped first; Max returns its second
    // operand for NaN, so NaN lanes stay NaN.
    (void)di;
    return hn::IfThenZeroElse(hn::Lt(x, hn::Set(d, -126.0f)),
                              V{_mm512_scalef_ps(poly.raw, rounded.raw)});
  }
#endif
  // Max(rounded, -127) puts the clamp second so that a NaN lane becomes -127
  // on every target (x86 and hwy's scalar Max return the non-NaN operand;
  // NEON/SVE convert NaN to 0): the integer conversion is then always
  // defined, and the NaN still reaches the result through `poly`.
  const V clamped = hn::Max(rounded, hn::Set(d, -127.0f));
  const auto biased = hn::Add(hn::ConvertTo(di, clamped), hn::Set(di, 127));
  const V pow2 = hn::BitCast(d, hn::ShiftLeft<23>(biased));
  return hn::IfThenZeroElse(hn::Lt(x, hn::Set(d, -126.0f)),
                            hn::Mul(poly, pow2));
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_EXP2_INL_H_
