// Regression tests for the kernel bugs the fuzzer (fuzz/, docs/robustness.md)
// found. Kernel bugs were committed DISABLED_ as reproducers and run since
// their fixes (4c2f6b7, cc3832d, a2e7e04, and 10/11 with the accumulator
// rerun and the hidden-key marking); each test says what went wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

class FuzzerFindings : public ::testing::TestWithParam<uint64_t> {};

// K and V rows stored backwards (sequence stride -D, elements contiguous),
// read in place. The kernel carried the row stride as size_t, so
// `k + row_stride * n` added a wrapped unsigned offset to a pointer:
// undefined behaviour that still reached the right address, so the result
// matched and only clang's UBSan pointer-overflow check (scripts/fuzz.sh;
// GCC 12 does not flag it) failed, in qk_tile-inl.h, pv_tile-inl.h and
// attention.cc. To see it fail again, run this test built with
//   CC=clang-14 CXX=clang++-14 cmake ... -DSDPA_SANITIZE=undefined
TEST_P(FuzzerFindings, NegativeKeyOrValueRowStride) {
  Case c;
  c.q_len = 7, c.kv_len = 7, c.head_dim = 8, c.value_dim = 8;
  c.layout = Layout::kReversed;  // strides[2] = -D for q, k, v and out
  Inputs inputs(c);
  const Result r = inputs.Run(ContextFor(GetParam(), 1));
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  EXPECT_LE(r.max_out_error, kOutTolerance);
}

// A key the causal rule hides from a row is removed outright (sdpa.h; the
// reference never reads its mask value), so the mask value there cannot
// matter. The kernel hid it first (score -inf) and added the mask after:
// -inf + inf and -inf + NaN are NaN, and the row came out NaN, whenever
// another row of the same tile saw the key (otherwise the key is clipped
// from the tile and never read). Fails on every ISA but SCALAR, whose
// tiles are too small to hold such a pair of rows.
TEST_P(FuzzerFindings, InfOrNaNMaskOnHiddenKey) {
  for (float poison : {std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::quiet_NaN()}) {
    Case c;
    c.q_len = 8, c.kv_len = 8, c.head_dim = 8, c.value_dim = 8;
    c.causal = SDPA_CAUSAL_TOP_LEFT;  // row i sees keys j <= i
    c.mask = MaskKind::kAdditive;
    Inputs inputs(c);
    for (float& x : inputs.mask_values()) x = 0.0f;
    inputs.mask_values()[2 * 8 + 5] = poison;  // row 2 does not see key 5
    const Result r = inputs.Run(ContextFor(GetParam(), 1));
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    for (size_t e = 0; e < 8; ++e) {
      EXPECT_TRUE(std::isfinite(r.out[2 * 8 + e])) << "poison " << poison;
    }
    EXPECT_LE(r.max_out_error, kOutTolerance) << "poison " << poison;
  }
}

// A row whose every visible key scores -inf because of Inf in K (the mask
// removes nothing): softmax is exp(-inf - -inf) = NaN in IEEE arithmetic and
// in the float64 reference (src/reference.cc), but the kernel treated the
// row as one that sees no key and wrote out 0, lse -inf. Only a row that
// sees no key at all is 0 / -inf.
TEST_P(FuzzerFindings, EveryVisibleScoreMinusInf) {
  Case c;
  c.q_len = 2, c.kv_len = 3, c.head_dim = 4, c.value_dim = 4;
  Inputs inputs(c);
  for (int64_t d = 0; d < 4; ++d) {
    inputs.q().At(0, 0, 0, d) = d == 0 ? -1.0f : 0.5f;  // row 0: q0 < 0
    inputs.q().At(0, 0, 1, d) = 1.0f;                   // row 1: q0 > 0
  }
  for (int64_t j = 0; j < 3; ++j) {
    for (int64_t d = 0; d < 4; ++d) {
      inputs.k().At(0, 0, j, d) =
          d == 0 ? std::numeric_limits<float>::infinity() : 0.25f;
    }
  }
  // Row 0 scores -inf on every key; row 1 +inf on every key (NaN in both
  // the kernel and the reference).
  const Result r = inputs.Run(ContextFor(GetParam(), 1));
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  EXPECT_TRUE(std::isnan(r.out[0])) << r.out[0];
  EXPECT_TRUE(std::isnan(r.lse[0])) << r.lse[0];
  EXPECT_LE(r.max_out_error, kOutTolerance);
  EXPECT_LE(r.max_lse_error, kLseTolerance);
}

// The kernel multiplies Q by scale·log2(e) in float before the dot
// products. With |q|·|scale|·1.44 > FLT_MAX that product was ±inf even
// when the scores q·k·scale are small: here K is 0, every score is 0, and
// the output must be the mean of V; the kernel gave NaN (inf·0).
TEST_P(FuzzerFindings, ScaledQueryOverflows) {
  Case c;
  c.q_len = 2, c.kv_len = 3, c.head_dim = 4, c.value_dim = 4;
  c.scale = 1e36f;
  Inputs inputs(c);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t d = 0; d < 4; ++d) inputs.q().At(0, 0, i, d) = 1000.0f;
  for (int64_t j = 0; j < 3; ++j)
    for (int64_t d = 0; d < 4; ++d) inputs.k().At(0, 0, j, d) = 0.0f;
  const Result r = inputs.Run(ContextFor(GetParam(), 1));
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  for (float x : r.out) EXPECT_TRUE(std::isfinite(x)) << x;
  EXPECT_LE(r.max_out_error, kOutTolerance);
  EXPECT_LE(r.max_lse_error, kLseTolerance);
}

// A dimension of size 1 may have any stride: only its index 0 is used.
// With Tk = 1 and a K (or V) row stride near INT64_MAX, the kernel's
// register tiles computed pointers to the rows after the last one
// (stride * 2 ... * 7, never dereferenced) and overflowed int64: undefined,
// reported by clang's UBSan in qk_tile-inl.h. Fixed in the validator
// (src/validate.cc), which now hands the kernels stride 0 (1 innermost)
// for every dimension of size 1.
TEST_P(FuzzerFindings, SizeOneDimensionsMayHaveAnyStride) {
  for (int64_t stride :
       {std::numeric_limits<int64_t>::max() - 1,
        std::numeric_limits<int64_t>::min(), int64_t{1} << 62}) {
    Case c;
    c.q_len = 40, c.kv_len = 1, c.head_dim = 4, c.value_dim = 4;
    Inputs inputs(c);
    inputs.k().view().strides[2] = stride;  // Tk = 1
    inputs.v().view().strides[2] = stride;
    inputs.q().view().strides[0] = stride;  // B = 1
    inputs.k().view().strides[1] = stride;  // Hkv = 1
    const Result r = inputs.Run(ContextFor(GetParam(), 1));
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    EXPECT_LE(r.max_out_error, kOutTolerance) << stride;
    EXPECT_LE(r.max_lse_error, kLseTolerance) << stride;
  }
}

// F16 K or V holding NaN or Inf widened to a large finite number (Inf to
// 65536, NaN to 98304) on the SCALAR ISA when the library was built with
// clang: there the SCALAR ISA is Highway's EMU128 target, and the packing
// took Highway 1.0.3's emulated f16 PromoteTo on every target but
// HWY_SCALAR, SSE4 and SSSE3 (fixed in cc3832d). GCC builds compile
// HWY_SCALAR, so only a clang build of this test (or the fuzzer) shows it.
// D >= 4: the first 4 lanes go through the vector path.
TEST_P(FuzzerFindings, HalfInfOrNaNInKeyOrValue) {
  for (float special : {std::numeric_limits<float>::quiet_NaN(),
                        std::numeric_limits<float>::infinity()}) {
    for (bool in_key : {true, false}) {
      Case c;
      c.q_len = 1, c.kv_len = 1, c.head_dim = 4, c.value_dim = 4;
      c.k_dtype = c.v_dtype = SDPA_DTYPE_F16;
      Inputs inputs(c);
      inputs.q().At(0, 0, 0, 0) = 1.0f;  // so that q·inf = +inf, not NaN
      (in_key ? inputs.k() : inputs.v()).At(0, 0, 0, 0) = special;
      const Result r = inputs.Run(ContextFor(GetParam(), 1));
      ASSERT_EQ(r.status, SDPA_OK) << r.error;
      // One key: out = v, and a non-finite score or value stays non-finite.
      EXPECT_FALSE(std::isfinite(r.out[0]))
          << (in_key ? "K" : "V") << " = " << special << ": out " << r.out[0];
      EXPECT_LE(r.max_out_error, kOutTolerance);
      EXPECT_LE(r.max_lse_error, kLseTolerance);
    }
  }
}

// The kernel multiplied Q by scale·log2(e) in float before the dot
// products. With a tiny scale (here 1e-45) that product underflowed to 0,
// and 0 times an infinite K element is NaN where the score q·k·scale is
// -inf: that key must get weight 0 and the row is the other key's V row.
// The kernel gave NaN (the mirror image of ScaledQueryOverflows; fixed in
// a2e7e04: Q stays unscaled when scaling would flush an element to 0).
TEST_P(FuzzerFindings, ScaledQueryUnderflowsAgainstInfiniteKey) {
  Case c;
  c.q_len = 1, c.kv_len = 2, c.head_dim = 1, c.value_dim = 4;
  c.scale = 1e-45f;
  Inputs inputs(c);
  inputs.q().At(0, 0, 0, 0) = 0.5f;
  inputs.k().At(0, 0, 0, 0) = -std::numeric_limits<float>::infinity();
  inputs.k().At(0, 0, 1, 0) = 1.0f;
  const Result r = inputs.Run(ContextFor(GetParam(), 1));
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  for (int64_t e = 0; e < 4; ++e) {
    EXPECT_EQ(r.out[static_cast<size_t>(e)], inputs.v().At(0, 0, 1, e))
        << "column " << e;
  }
  EXPECT_LE(r.max_out_error, kOutTolerance);
  EXPECT_LE(r.max_lse_error, kLseTolerance);
}

// Finding 10: the output is accumulated unnormalised in float,
// O = sum_j p_j v_j with p_j <= 1, and divided by l = sum_j p_j at the end.
// With V elements near FLT_MAX the sum overflowed although the weighted mean
// is representable: two keys of equal score and V = 3e38 gave +inf instead
// of 3e38. Fixed: a task whose accumulator holds Inf/NaN is run again with
// every weight scaled by 2^-32 (TaskRunner::Run).
TEST_P(FuzzerFindings, LargeValuesOverflowTheAccumulator) {
  Case c;
  c.q_len = 1, c.kv_len = 2, c.head_dim = 1, c.value_dim = 1;
  Inputs inputs(c);
  inputs.q().At(0, 0, 0, 0) = 0.0f;  // equal scores: weights 1/2, 1/2
  for (int64_t j = 0; j < 2; ++j) inputs.v().At(0, 0, j, 0) = 3e38f;
  const Result r = inputs.Run(ContextFor(GetParam(), 1));
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  EXPECT_EQ(r.out[0], 3e38f);
  EXPECT_LE(r.max_out_error, kOutTolerance);
}

// Finding 10 on the other paths: prefill tiles (causal, masked blocks),
// decode's dot form, and a key range split across threads (merged in
// double). Every V element is ±(2.5 .. 3.4)e38, so any two keys of equal
// sign overflow a float sum; the outputs are weighted means and must match
// the reference to the usual tolerance of max|V|.
TEST_P(FuzzerFindings, LargeValuesOnEveryPath) {
  struct Shape {
    int64_t q_heads, kv_heads, q_len, kv_len, head_dim, value_dim;
    sdpa_causal causal;
    int32_t threads;
  };
  for (const Shape& s : {Shape{2, 1, 37, 300, 16, 24, SDPA_CAUSAL_TOP_LEFT, 1},
                         Shape{4, 1, 1, 1500, 32, 16, SDPA_CAUSAL_NONE, 1},
                         Shape{1, 1, 1, 3000, 8, 8, SDPA_CAUSAL_NONE, 2}}) {
    Case c;
    c.q_heads = s.q_heads, c.kv_heads = s.kv_heads, c.q_len = s.q_len;
    c.kv_len = s.kv_len, c.head_dim = s.head_dim, c.value_dim = s.value_dim;
    c.causal = s.causal;
    Inputs inputs(c);
    for (int64_t j = 0; j < c.kv_len; ++j) {
      for (int64_t e = 0; e < c.value_dim; ++e) {
        const float x = inputs.v().At(0, 0, j, e);
        inputs.v().At(0, 0, j, e) =
            (x < 0 ? -1.0f : 1.0f) *
            (2.5e38f + 0.9e38f * std::fabs(std::tanh(x)));
      }
    }
    const Result r = inputs.Run(ContextFor(GetParam(), s.threads));
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    EXPECT_LE(r.max_out_error, kOutTolerance) << "Tq " << s.q_len;
    EXPECT_LE(r.max_lse_error, kLseTolerance) << "Tq " << s.q_len;
  }
}

// Finding 11: a visible key whose score is -inf (Inf in K) has weight
// exactly 0, and 0 times an infinite V element is NaN in IEEE arithmetic
// and in the float64 reference. The kernel skipped zero-weight keys in tiles
// where some row had keys hidden (to keep masked keys out), but not
// elsewhere: here row 1 sees both keys, yet its tile also holds row 0, from
// which the causal rule hides key 1, so row 1 came out finite (the V row of
// key 0); without row 0 it was NaN. Fixed: such tiles mark hidden keys'
// weights -0.0 and skip only those (MarkHiddenKeys), so the NaN propagates
// everywhere, as sdpa.h states.
TEST_P(FuzzerFindings, ZeroWeightKeyWithInfiniteValue) {
  Case c;
  c.q_len = 2, c.kv_len = 2, c.head_dim = 1, c.value_dim = 2;
  c.causal = SDPA_CAUSAL_TOP_LEFT;  // row 0 sees key 0, row 1 keys 0 and 1
  Inputs inputs(c);
  inputs.q().At(0, 0, 1, 0) = 1.0f;
  inputs.k().At(0, 0, 0, 0) = 0.5f;
  inputs.k().At(0, 0, 1, 0) = -std::numeric_limits<float>::infinity();
  inputs.v().At(0, 0, 1, 0) = -std::numeric_limits<float>::infinity();
  const Result r = inputs.Run(ContextFor(GetParam(), 1));
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  EXPECT_TRUE(std::isnan(r.out[1 * 2 + 0])) << r.out[1 * 2 + 0];
  EXPECT_LE(r.max_out_error, kOutTolerance);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, FuzzerFindings,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

}  // namespace
}  // namespace sdpa_test
