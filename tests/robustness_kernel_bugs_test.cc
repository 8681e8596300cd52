// Reproducers of kernel bugs found by the fuzzer (fuzz/, docs/robustness.md)
// that are not fixed yet. Each is DISABLED_ until the kernel is fixed; then
// the DISABLED_ prefix goes, and so does its entry in fuzz/ubsan.supp.
//
// Run them with --gtest_also_run_disabled_tests.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

class KernelBugs : public ::testing::TestWithParam<uint64_t> {};

// K and V rows stored backwards (sequence stride -D, elements contiguous):
// the kernel reads them in place and carries the row stride as size_t, so
// `k + row_stride * n` adds a wrapped unsigned offset to a pointer, which
// is undefined behaviour. It happens to reach the right address on the
// targets we build (the result matches the reference), which is why only
// UndefinedBehaviorSanitizer's pointer-overflow check (clang, as in
// scripts/fuzz.sh; GCC 12 does not flag it) sees it:
//
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build-ubsan -G Ninja
//       -DSDPA_SANITIZE=undefined -DSDPA_BUILD_BENCHMARKS=OFF
//   ninja -C build-ubsan robustness_kernel_bugs_test
//   build-ubsan/tests/robustness_kernel_bugs_test
//   --gtest_also_run_disabled_tests
//
// reports "runtime error: addition of unsigned offset to 0x... overflowed"
// in src/kernels/qk_tile-inl.h (K) and aborts; with K forward and V
// reversed, the same happens in src/kernels/attention.cc and pv_tile-inl.h.
TEST_P(KernelBugs, DISABLED_NegativeKeyOrValueRowStride) {
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
// matter. The kernel hides it first (score -inf) and adds the mask after:
// -inf + inf and -inf + NaN are NaN, and the row comes out NaN. It happens
// when another row of the same tile sees the key (otherwise the key is
// clipped from the tile and never read): src/kernels/online_softmax-inl.h,
// OnlineSoftmaxTile, which could add the mask before the position select.
TEST_P(KernelBugs, DISABLED_InfOrNaNMaskOnHiddenKey) {
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
// in the float64 reference (src/reference.cc), but the kernel treats the
// row as one that sees no key and writes out 0, lse -inf. One of the two
// must change (and sdpa.h say which): either the kernel propagates NaN
// here, or the reference and the header define such a row as unseen. This
// test expects the reference's answer.
TEST_P(KernelBugs, DISABLED_EveryVisibleScoreMinusInf) {
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
// products. With |q|·|scale|·1.44 > FLT_MAX that product is ±inf even when
// the scores q·k·scale are small: here K is 0, every score is 0, and the
// output must be the mean of V; the kernel gives NaN (inf·0). Scaling the
// scores (or Q in double, or K) instead would not overflow before the
// scores themselves do.
TEST_P(KernelBugs, DISABLED_ScaledQueryOverflows) {
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

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelBugs,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

}  // namespace
}  // namespace sdpa_test
