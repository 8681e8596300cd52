// A fast 2^x for the online softmax, where x = score - running max <= 0.
//
// Contract (tests/kernel_exp2_test.cc, every ISA): exact 2^0 = 1 (so a row
// whose max did not change is rescaled by exactly 1) and exact powers of two
// at integers, 2^-inf = +0, results below 2^-126 flush to +0, NaN in -> NaN
// out. Max relative error 1e-7 on [-126, 0] (measured 6.0e-8 with FMA,
// 8.6e-8 without), well inside what fp32 attention needs, at about half the
// cost of hwy's 1-ULP Exp. The reduction is x = floor(x) + f, f in [0, 1),
// because AVX-512 does both halves of it in one instruction each.

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

// 2^f for f in [0, 1], with 2^0 == 1 exactly (NaN stays NaN): a minimax
// fit of relative error with the constant term fixed at 1.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V Exp2Fraction(D d, V f) {
  const V c6 = hn::Set(d, 2.102902799e-04f), c5 = hn::Set(d, 1.263198326e-03f);
  const V c4 = hn::Set(d, 9.658619761e-03f), c3 = hn::Set(d, 5.549290404e-02f);
  const V c2 = hn::Set(d, 2.402278632e-01f), c1 = hn::Set(d, 6.931471229e-01f);
#if HWY_NATIVE_FMA
  V poly = hn::MulAdd(c6, f, c5);
  poly = hn::MulAdd(poly, f, c4);
  poly = hn::MulAdd(poly, f, c3);
  poly = hn::MulAdd(poly, f, c2);
  poly = hn::MulAdd(poly, f, c1);
#else
  // Without FMA each Horner step is a multiply and a dependent add: the
  // chain above would be 10 of them. Pairs of terms in parallel instead.
  const V f2 = hn::Mul(f, f);
  const V poly =
      hn::MulAdd(hn::MulAdd(hn::MulAdd(c6, f, c5), f2, hn::MulAdd(c4, f, c3)),
                 f2, hn::MulAdd(c2, f, c1));
#endif
  return hn::MulAdd(poly, f, hn::Set(d, 1.0f));
}

// 2^n for integral n in [-127, 0] (+0 at -127, the exponent field 0):
// n + 127 + 2^23 holds the integer n + 127 in its low mantissa bits;
// shifted left by 23 they are the exponent field of 2^n, and the exponent
// bits of 2^23 leave the word. Two operations where ConvertTo costs six on
// SSE4/AVX2 (a fix-up for overflow, which n in [-127, 0] cannot reach).
// A NaN n gives some bit pattern: FastExp2 carries NaN through `poly`.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V PowerOfTwo(D d, V n) {
  const hn::RebindToSigned<D> di;
  const V biased = hn::Add(n, hn::Set(d, 8388608.0f + 127.0f));
  return hn::BitCast(d, hn::ShiftLeft<23>(hn::BitCast(di, biased)));
}

// x below this gives 0 (2^x flushed rather than subnormal).
constexpr float kExp2FlushBelow = -126.0f;

template <class D, class V = hn::Vec<D>>
HWY_INLINE V FastExp2(D d, V x) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if constexpr (std::is_same_v<V, hn::Vec512<float>>) {
    // AVX-512 has both halves of the reduction in one instruction each:
    // vreduceps gives x - floor(x) (0 for +-inf, NaN for NaN) and vscalefps
    // multiplies by 2^floor(x); the flush to 0 is the zero-masking of the
    // latter. Kept: x >= -126 or NaN (not-less-than, unordered true).
    const V fraction{
        _mm512_reduce_ps(x.raw, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)};
    const V poly = Exp2Fraction(d, fraction);
    const __mmask16 kept =
        _mm512_cmp_ps_mask(x.raw, hn::Set(d, kExp2FlushBelow).raw, _CMP_NLT_UQ);
    return V{_mm512_maskz_scalef_ps(kept, poly.raw, x.raw)};
  }
#endif
#if HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  // x clamped to -127 first: n = -127 then makes an exponent field of 0,
  // 2^n = +0, which is the flush below 2^-126 (x in [-127, -126) included)
  // and 2^-inf = +0, with no compare and select (SSE4 and AVX2: two
  // operations of ~20 fewer). Max(-127, x) keeps a NaN x, because x86's
  // maxps returns its second operand when either is NaN; it then reaches
  // the result through `poly`. NEON and SVE (maxNum: the non-NaN operand)
  // and hwy's scalar Max would turn it into -127, hence the form below.
  const V clamped = hn::Max(hn::Set(d, -127.0f), x);
  const V floor = hn::Floor(clamped);
  const V poly = Exp2Fraction(d, hn::Sub(clamped, floor));
  return hn::Mul(poly, PowerOfTwo(d, floor));
#else
  // The clamp after the reduction, so that `poly` sees a NaN x; the flush
  // is a select.
  const V floor = hn::Floor(x);
  const V poly = Exp2Fraction(d, hn::Sub(x, floor));  // NaN stays NaN
  const V clamped = hn::Max(floor, hn::Set(d, -127.0f));
  return hn::IfThenZeroElse(hn::Lt(x, hn::Set(d, kExp2FlushBelow)),
                            hn::Mul(poly, PowerOfTwo(d, clamped)));
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#endif  // SDPA_KERNELS_EXP2_INL_H_
