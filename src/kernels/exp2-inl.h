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

// 2^f for f in [-0.5, 0.5] (NaN stays NaN).
template <class D, class V = hn::Vec<D>>
HWY_INLINE V Exp2Reduced(D d, V f) {
  V poly = hn::Set(d, 1.535336188319500e-4f);
  poly = hn::MulAdd(poly, f, hn::Set(d, 1.339887440266574e-3f));
  poly = hn::MulAdd(poly, f, hn::Set(d, 9.618437357674640e-3f));
  poly = hn::MulAdd(poly, f, hn::Set(d, 5.550332471162809e-2f));
  poly = hn::MulAdd(poly, f, hn::Set(d, 2.402264791363012e-1f));
  poly = hn::MulAdd(poly, f, hn::Set(d, 6.931472028550421e-1f));
  return hn::MulAdd(poly, f, hn::Set(d, 1.0f));
}

template <class D, class V = hn::Vec<D>>
HWY_INLINE V FastExp2(D d, V x) {
  const V kMin = hn::Set(d, -126.0f);  // below: flushed to 0
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if constexpr (std::is_same_v<V, hn::Vec512<float>>) {
    // AVX-512 scales by 2^rounded in one instruction (vscalefps) instead of
    // building 2^n from integer bits: 3 fewer operations per vector, the
    // same bits, as rounded >= -126 wherever the result is kept.
    // hn::Round(-inf) = -inf would make the fraction NaN, so the -inf lanes
    // (flushed anyway) are clamped first; Max returns its second operand
    // for NaN, so NaN lanes stay NaN.
    const V clamped = hn::Max(hn::Set(d, -160.0f), x);
    const V rounded = hn::Round(clamped);
    const V poly = Exp2Reduced(d, hn::Sub(clamped, rounded));
    return hn::IfThenZeroElse(hn::Lt(x, kMin),
                              V{_mm512_scalef_ps(poly.raw, rounded.raw)});
  }
#endif
  const hn::RebindToSigned<D> di;
  const V rounded = hn::Round(x);
  const V poly = Exp2Reduced(d, hn::Sub(x, rounded));  // NaN stays NaN
  // Max(rounded, -127) puts the clamp second so that a NaN lane becomes -127
  // on every target (x86 and hwy's scalar Max return the non-NaN operand;
  // NEON/SVE convert NaN to 0): the integer conversion is then always
  // defined, and the NaN still reaches the result through `poly`.
  const V clamped = hn::Max(rounded, hn::Set(d, -127.0f));
  const auto biased = hn::Add(hn::ConvertTo(di, clamped), hn::Set(di, 127));
  const V pow2 = hn::BitCast(d, hn::ShiftLeft<23>(biased));
  return hn::IfThenZeroElse(hn::Lt(x, kMin), hn::Mul(poly, pow2));
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_EXP2_INL_H_
