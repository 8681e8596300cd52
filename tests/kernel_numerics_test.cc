// Every ISA on the inputs that break naive kernels: NaN and Inf in Q, K and
// V, scores of magnitude 1e4, denormals, and rows that see no key at all.
// Expectations are spelled out (which rows must be NaN, which must not), and
// the other rows still match the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

class KernelNumerics : public ::testing::TestWithParam<uint64_t> {
 protected:
  Result Run(Inputs& inputs) { return inputs.Run(ContextFor(GetParam(), 2)); }
};

// Row `row` of a [1, H, Tq, Dv] result.
bool RowAllNaN(const Result& r, int64_t row, int64_t dv) {
  for (int64_t e = 0; e < dv; ++e) {
    if (!std::isnan(r.out[static_cast<size_t>(row * dv + e)])) return false;
  }
  return true;
}
bool RowAllFinite(const Result& r, int64_t row, int64_t dv) {
  for (int64_t e = 0; e < dv; ++e) {
    if (!std::isfinite(r.out[static_cast<size_t>(row * dv + e)])) return false;
  }
  return true;
}

TEST_P(KernelNumerics, NaNInQueryPoisonsOnlyItsRow) {
  for (int64_t tq : {1, 3, 50}) {
    Case c;
    c.q_len = tq, c.kv_len = 70, c.head_dim = 16, c.value_dim = 8;
    Inputs inputs(c);
    const int64_t poisoned = tq / 2;
    inputs.q().At(0, 0, poisoned, 5) = kNaN;
    const Result r = Run(inputs);
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    for (int64_t i = 0; i < tq; ++i) {
      if (i == poisoned) {
        EXPECT_TRUE(RowAllNaN(r, i, 8)) << "row " << i;
        EXPECT_TRUE(std::isnan(r.lse[static_cast<size_t>(i)]));
      } else {
        EXPECT_TRUE(RowAllFinite(r, i, 8)) << "row " << i;
      }
    }
    EXPECT_LE(r.max_out_error, kOutTolerance);
  }
}

TEST_P(KernelNumerics, NaNInKeyPoisonsTheRowsThatSeeIt) {
  Case c;
  c.q_len = 40, c.kv_len = 40, c.head_dim = 16, c.value_dim = 8;
  c.causal = SDPA_CAUSAL_TOP_LEFT;
  Inputs inputs(c);
  inputs.k().At(0, 0, 20, 0) = kNaN;
  const Result r = Run(inputs);
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  for (int64_t i = 0; i < 40; ++i) {
    if (i >= 20) {
      EXPECT_TRUE(RowAllNaN(r, i, 8)) << "row " << i;
    } else {
      EXPECT_TRUE(RowAllFinite(r, i, 8)) << "row " << i;
    }
  }
  EXPECT_LE(r.max_out_error, kOutTolerance);
}

TEST_P(KernelNumerics, InfInValueReachesOnlyRowsThatSeeIt) {
  for (int64_t tk : {40, 300}) {
    Case c;
    c.q_len = 40, c.kv_len = tk, c.head_dim = 16, c.value_dim = 16;
    c.causal = SDPA_CAUSAL_TOP_LEFT;
    Inputs inputs(c);
    for (int64_t e = 0; e < 16; ++e) inputs.v().At(0, 0, 30, e) = kInf;
    inputs.v().At(0, 0, 25, 3) = kNaN;
    const Result r = Run(inputs);
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    for (int64_t i = 0; i < 25; ++i) {
      EXPECT_TRUE(RowAllFinite(r, i, 16)) << "row " << i << " Tk " << tk;
    }
    for (int64_t i = 25; i < 40; ++i) {
      EXPECT_TRUE(std::isnan(r.out[static_cast<size_t>(i * 16 + 3)]))
          << "row " << i;
    }
    EXPECT_LE(r.max_out_error, kOutTolerance);
  }
}

TEST_P(KernelNumerics, MaskedKeyWithNaNIsRemoved) {
  for (MaskKind kind : {MaskKind::kBool, MaskKind::kAdditive}) {
    Case c;
    c.q_len = 9, c.kv_len = 50, c.head_dim = 8, c.value_dim = 8;
    c.mask = kind;
    c.mask_rows_1 = true;  // one mask row for every query
    Inputs inputs(c);
    inputs.mask_bits()[17] = 0;
    inputs.mask_values()[17] = -kInf;
    inputs.k().At(0, 0, 17, 2) = kNaN;
    for (int64_t e = 0; e < 8; ++e) inputs.v().At(0, 0, 17, e) = kInf;
    const Result r = Run(inputs);
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    for (int64_t i = 0; i < 9; ++i) {
      EXPECT_TRUE(RowAllFinite(r, i, 8)) << "row " << i;
    }
    EXPECT_LE(r.max_out_error, kOutTolerance);
  }
}

TEST_P(KernelNumerics, LargeScoresDoNotOverflow) {
  // Scores of magnitude ~1e4: far past exp's range without max subtraction.
  for (int64_t tk : {7, 200}) {
    Case c;
    c.q_heads = 2, c.kv_heads = 2;
    c.q_len = 33, c.kv_len = tk, c.head_dim = 16, c.value_dim = 16;
    Inputs inputs(c);
    std::mt19937 rng(7);
    inputs.q().FillNormal(rng, 70.0f);
    inputs.k().FillNormal(rng, 70.0f);
    const Result r = Run(inputs);
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    for (int64_t i = 0; i < 2 * 33; ++i) {
      EXPECT_TRUE(RowAllFinite(r, i, 16)) << "row " << i;
    }
    for (float lse : r.lse) EXPECT_TRUE(std::isfinite(lse));
    EXPECT_LE(r.max_out_error, kOutTolerance);
    EXPECT_LE(r.max_lse_error, kLseTolerance);
  }
}

TEST_P(KernelNumerics, DenormalQueriesAndKeys) {
  Case c;
  c.q_len = 20, c.kv_len = 90, c.head_dim = 16, c.value_dim = 16;
  Inputs inputs(c);
  std::mt19937 rng(3);
  inputs.q().FillNormal(rng, 1e-39f);
  inputs.k().FillNormal(rng, 1e-39f);
  const Result r = Run(inputs);
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  EXPECT_LE(r.max_out_error, kOutTolerance);
  EXPECT_LE(r.max_lse_error, kLseTolerance);
}

TEST_P(KernelNumerics, RowsThatSeeNoKeyGiveZeroAndMinusInfLse) {
  // Bottom-right causal with Tq > Tk: the first Tq - Tk rows see nothing.
  Case c;
  c.q_len = 70, c.kv_len = 20, c.head_dim = 8, c.value_dim = 8;
  c.causal = SDPA_CAUSAL_BOTTOM_RIGHT;
  Inputs inputs(c);
  const Result r = Run(inputs);
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  for (int64_t i = 0; i < 70; ++i) {
    const bool blind = i < 50;
    for (int64_t e = 0; e < 8; ++e) {
      const float x = r.out[static_cast<size_t>(i * 8 + e)];
      if (blind) {
        EXPECT_EQ(x, 0.0f) << "row " << i;
      } else {
        EXPECT_TRUE(std::isfinite(x)) << "row " << i;
      }
    }
    if (blind) {
      EXPECT_EQ(r.lse[static_cast<size_t>(i)], -kInf);
    }
  }
  EXPECT_LE(r.max_out_error, kOutTolerance);

  // A window that excludes every key, and an additive mask of all -inf.
  Case w;
  w.q_len = 5, w.kv_len = 300, w.head_dim = 8, w.value_dim = 8;
  w.causal = SDPA_CAUSAL_TOP_LEFT;
  w.window_left = 0, w.window_right = 0;
  Inputs window_inputs(w);
  const Result rw = Run(window_inputs);
  ASSERT_EQ(rw.status, SDPA_OK) << rw.error;
  EXPECT_LE(rw.max_out_error, kOutTolerance);

  Case m;
  m.q_len = 4, m.kv_len = 60, m.head_dim = 8, m.value_dim = 8;
  m.mask = MaskKind::kAdditive;
  Inputs mask_inputs(m);
  for (float& x : mask_inputs.mask_values()) x = -kInf;
  const Result rm = Run(mask_inputs);
  ASSERT_EQ(rm.status, SDPA_OK) << rm.error;
  for (float x : rm.out) EXPECT_EQ(x, 0.0f);
  for (float x : rm.lse) EXPECT_EQ(x, -kInf);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelNumerics,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

}  // namespace
}  // namespace sdpa_test
