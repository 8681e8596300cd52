// Numerical edge cases kernel_numerics_test.cc leaves out, each with the
// result it is defined to have (docs/robustness.md, "Numerics"), on every
// ISA: +inf and NaN in the additive mask, scales of 1e30 and 1e-30, the
// smallest problem (D = Tk = Tq = 1), -0.0 inputs, all-zero inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

class RobustnessNumerics : public ::testing::TestWithParam<uint64_t> {
 protected:
  Result Run(Inputs& inputs) { return inputs.Run(ContextFor(GetParam(), 2)); }
};

float Out(const Result& r, int64_t row, int64_t dv, int64_t e) {
  return r.out[static_cast<size_t>(row * dv + e)];
}

bool RowAllNaN(const Result& r, int64_t row, int64_t dv) {
  for (int64_t e = 0; e < dv; ++e) {
    if (!std::isnan(Out(r, row, dv, e))) return false;
  }
  return true;
}

bool RowAllFinite(const Result& r, int64_t row, int64_t dv) {
  for (int64_t e = 0; e < dv; ++e) {
    if (!std::isfinite(Out(r, row, dv, e))) return false;
  }
  return true;
}

// An additive mask of 0 everywhere (no key hidden), [1, 1, Tq, Tk].
void ClearMask(Inputs& inputs) {
  for (float& x : inputs.mask_values()) x = 0.0f;
}

// softmax(..., +inf, ...) is inf/inf: the row is NaN (output and lse), as
// in the float64 reference and in IEEE arithmetic; other rows are untouched.
// A +inf on a key the causal rule hides from the row does nothing (the
// kernel once got that wrong: FuzzerFindings.InfOrNaNMaskOnHiddenKey).
TEST_P(RobustnessNumerics, PlusInfInAdditiveMaskMakesItsRowNaN) {
  for (int64_t tk : {6, 200, 700}) {  // one block, several, decode-sized
    Case c;
    c.q_len = 5, c.kv_len = tk, c.head_dim = 8, c.value_dim = 8;
    c.mask = MaskKind::kAdditive;
    c.causal = SDPA_CAUSAL_BOTTOM_RIGHT;  // row i sees keys j <= i + tk - 5
    Inputs inputs(c);
    ClearMask(inputs);
    inputs.mask_values()[static_cast<size_t>(1 * tk + 2)] = kInf;  // visible
    // Row 3 sees keys <= tk - 2 and row 4 all of them: the last key is
    // hidden from row 3 but not clipped from its tile.
    inputs.mask_values()[static_cast<size_t>(3 * tk + tk - 1)] = kInf;
    const Result r = Run(inputs);
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    for (int64_t i = 0; i < 5; ++i) {
      if (i == 1) {
        EXPECT_TRUE(RowAllNaN(r, i, 8)) << "Tk " << tk;
        EXPECT_TRUE(std::isnan(r.lse[1])) << "Tk " << tk;
      } else {
        EXPECT_TRUE(RowAllFinite(r, i, 8)) << "row " << i << " Tk " << tk;
        EXPECT_TRUE(std::isfinite(r.lse[static_cast<size_t>(i)]));
      }
    }
    EXPECT_LE(r.max_out_error, kOutTolerance) << "Tk " << tk;
    EXPECT_LE(r.max_lse_error, kLseTolerance) << "Tk " << tk;
  }
}

// NaN in the additive mask of a visible key: that row is NaN; on a key no
// row of the call sees: no effect. A mask broadcast over rows poisons every
// row. A NaN on a key hidden from its row but seen by other rows of the
// call does nothing either.
TEST_P(RobustnessNumerics, NaNInAdditiveMaskPoisonsOnlyRowsThatSeeIt) {
  Case c;
  c.q_len = 6, c.kv_len = 40, c.head_dim = 8, c.value_dim = 4;
  c.mask = MaskKind::kAdditive;
  c.causal = SDPA_CAUSAL_TOP_LEFT;  // row i sees keys j <= i
  Inputs inputs(c);
  ClearMask(inputs);
  inputs.mask_values()[static_cast<size_t>(2 * 40 + 1)] = kNaN;   // seen
  inputs.mask_values()[static_cast<size_t>(4 * 40 + 30)] = kNaN;  // unseen
  inputs.mask_values()[static_cast<size_t>(1 * 40 + 3)] = kNaN;  // rows 3-5 see
  const Result r = Run(inputs);
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  for (int64_t i = 0; i < 6; ++i) {
    if (i == 2) {
      EXPECT_TRUE(RowAllNaN(r, i, 4));
      EXPECT_TRUE(std::isnan(r.lse[2]));
    } else {
      EXPECT_TRUE(RowAllFinite(r, i, 4)) << "row " << i;
    }
  }
  EXPECT_LE(r.max_out_error, kOutTolerance);
  EXPECT_LE(r.max_lse_error, kLseTolerance);

  Case b = c;
  b.causal = SDPA_CAUSAL_NONE;
  b.mask_rows_1 = true;  // one mask row for all queries
  Inputs broadcast(b);
  ClearMask(broadcast);
  broadcast.mask_values()[7] = kNaN;
  const Result rb = Run(broadcast);
  ASSERT_EQ(rb.status, SDPA_OK) << rb.error;
  for (int64_t i = 0; i < 6; ++i) EXPECT_TRUE(RowAllNaN(rb, i, 4));
  EXPECT_LE(rb.max_out_error, kOutTolerance);
}

// Q·Kᵀ with one clear maximum per row (gap >= 1 before scaling): with
// scale 1e30 the softmax is exactly one-hot, so each output row is exactly
// the V row of its argmax and lse is the top scaled score; scale -1e30
// picks the argmin. No NaN, no overflow (scores ~1e31 are far from FLT_MAX).
TEST_P(RobustnessNumerics, HugeScaleSelectsTheArgmaxExactly) {
  for (float scale : {1e30f, -1e30f}) {
    Case c;
    c.q_len = 4, c.kv_len = 7, c.head_dim = 4, c.value_dim = 5;
    c.scale = scale;
    Inputs inputs(c);
    // k_j = (j - 3, 1, 0, 0); q_i = (a_i, b_i, 0, 0): score a_i (j - 3) + b_i.
    const float a[4] = {1, -2, 3, -1}, b[4] = {0, 5, -1, 2};
    for (int64_t j = 0; j < 7; ++j) {
      for (int64_t d = 0; d < 4; ++d) {
        inputs.k().At(0, 0, j, d) = d == 0   ? float(j - 3)
                                    : d == 1 ? 1.0f
                                             : 0.0f;
      }
    }
    for (int64_t i = 0; i < 4; ++i) {
      for (int64_t d = 0; d < 4; ++d) {
        inputs.q().At(0, 0, i, d) = d == 0 ? a[i] : d == 1 ? b[i] : 0.0f;
      }
    }
    const Result r = Run(inputs);
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    for (int64_t i = 0; i < 4; ++i) {
      // The winning key: the largest a_i (j - 3) * sign(scale).
      const bool up = (a[i] > 0) == (scale > 0);
      const int64_t winner = up ? 6 : 0;
      for (int64_t e = 0; e < 5; ++e) {
        EXPECT_EQ(Out(r, i, 5, e), inputs.v().At(0, 0, winner, e))
            << "scale " << scale << " row " << i;
      }
      const double top = double(scale) * (a[i] * (winner - 3) + b[i]);
      EXPECT_NEAR(r.lse[static_cast<size_t>(i)], top, 1e-6 * std::fabs(top));
    }
    EXPECT_LE(r.max_out_error, kOutTolerance);
    EXPECT_LE(r.max_lse_error, kLseTolerance);
  }
}

// scale 1e-30: every score rounds to ~0, the weights are uniform: each row
// is the mean of the V rows it sees, and lse = log(number of keys seen).
TEST_P(RobustnessNumerics, TinyScaleGivesTheMeanOfTheVisibleValues) {
  Case c;
  c.q_len = 9, c.kv_len = 9, c.head_dim = 16, c.value_dim = 6;
  c.scale = 1e-30f;
  c.causal = SDPA_CAUSAL_TOP_LEFT;
  Inputs inputs(c);
  const Result r = Run(inputs);
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  for (int64_t i = 0; i < 9; ++i) {
    for (int64_t e = 0; e < 6; ++e) {
      double mean = 0;
      for (int64_t j = 0; j <= i; ++j) mean += inputs.v().At(0, 0, j, e);
      mean /= double(i + 1);
      EXPECT_NEAR(Out(r, i, 6, e), mean, kOutTolerance * r.out_scale);
    }
    EXPECT_NEAR(r.lse[static_cast<size_t>(i)], std::log(double(i + 1)),
                kLseTolerance);
  }
  EXPECT_LE(r.max_out_error, kOutTolerance);
  EXPECT_LE(r.max_lse_error, kLseTolerance);
}

// The smallest problem: one query, one key, one dim. The single weight is
// exactly 1, so out == v bit for bit, and lse == q·k·scale.
TEST_P(RobustnessNumerics, OneQueryOneKeyOneDim) {
  for (sdpa_causal causal :
       {SDPA_CAUSAL_NONE, SDPA_CAUSAL_TOP_LEFT, SDPA_CAUSAL_BOTTOM_RIGHT}) {
    for (float scale : {0.0f, 0.5f, -3.0f}) {
      Case c;
      c.q_len = 1, c.kv_len = 1, c.head_dim = 1, c.value_dim = 1;
      c.causal = causal;
      c.scale = scale;
      Inputs inputs(c);
      inputs.q().At(0, 0, 0, 0) = 1.5f;
      inputs.k().At(0, 0, 0, 0) = -2.0f;
      inputs.v().At(0, 0, 0, 0) = 0.3f;
      const Result r = Run(inputs);
      ASSERT_EQ(r.status, SDPA_OK) << r.error;
      EXPECT_EQ(r.out[0], 0.3f);
      // scale 0 means 1/sqrt(1) = 1.
      const double s = scale == 0.0f ? 1.0 : scale;
      const double lse = 1.5 * -2.0 * s;
      EXPECT_NEAR(r.lse[0], lse,
                  kLseTolerance * std::fmax(1.0, std::fabs(lse)));
    }
  }
}

// -0.0 is zero: Q = K = -0.0 scores 0 for every key (uniform weights), and
// V = -0.0 gives zero output (its sign is not specified). The result
// equals that of +0.0 inputs.
TEST_P(RobustnessNumerics, NegativeZeroInputsAreZeros) {
  Case c;
  c.q_len = 5, c.kv_len = 7, c.head_dim = 8, c.value_dim = 8;
  Inputs negative(c), positive(c);
  for (Inputs* inputs : {&negative, &positive}) {
    const float zero = inputs == &negative ? -0.0f : 0.0f;
    for (int64_t s = 0; s < 7; ++s) {
      for (int64_t d = 0; d < 8; ++d) {
        if (s < 5) inputs->q().At(0, 0, s, d) = zero;
        inputs->k().At(0, 0, s, d) = zero;
        inputs->v().At(0, 0, s, d) = zero;
      }
    }
  }
  const Result rn = Run(negative), rp = Run(positive);
  ASSERT_EQ(rn.status, SDPA_OK) << rn.error;
  ASSERT_EQ(rp.status, SDPA_OK) << rp.error;
  for (size_t i = 0; i < rn.out.size(); ++i) {
    EXPECT_EQ(rn.out[i], 0.0f);  // == compares -0.0 equal to 0.0
    EXPECT_EQ(rp.out[i], 0.0f);
  }
  for (size_t i = 0; i < rn.lse.size(); ++i) {
    EXPECT_NEAR(rn.lse[i], std::log(7.0), 1e-6);
    EXPECT_EQ(rn.lse[i], rp.lse[i]);
  }
  EXPECT_LE(rn.max_out_error, kOutTolerance);
  EXPECT_LE(rn.max_lse_error, kLseTolerance);
}

// All inputs zero: out is exactly 0 and lse = log(keys seen). With Q = K = 0
// but V not zero, every visible key weighs the same: out is the mean of the
// visible V rows (checked for causal rows and for split-KV decoding).
TEST_P(RobustnessNumerics, ZeroScoresAverageTheVisibleValues) {
  for (bool zero_v : {true, false}) {
    for (int64_t tk : {12, 1500}) {
      Case c;
      c.q_heads = 2, c.kv_heads = 1;
      c.q_len = tk == 12 ? 12 : 1, c.kv_len = tk;
      c.head_dim = 8, c.value_dim = 8;
      c.causal = SDPA_CAUSAL_BOTTOM_RIGHT;  // row i sees j <= i + tk - Tq
      Inputs inputs(c);
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t s = 0; s < c.q_len; ++s)
          for (int64_t d = 0; d < 8; ++d) inputs.q().At(0, h, s, d) = 0.0f;
      for (int64_t j = 0; j < tk; ++j)
        for (int64_t d = 0; d < 8; ++d) {
          inputs.k().At(0, 0, j, d) = 0.0f;
          if (zero_v) inputs.v().At(0, 0, j, d) = 0.0f;
        }
      // 4 threads: the decode case (1 query, 2 heads, 1 task) splits keys.
      const Result r = inputs.Run(ContextFor(GetParam(), 4));
      ASSERT_EQ(r.status, SDPA_OK) << r.error;
      for (int64_t h = 0; h < 2; ++h) {
        for (int64_t i = 0; i < c.q_len; ++i) {
          const int64_t row = h * c.q_len + i;
          const int64_t seen = i + tk - c.q_len + 1;
          for (int64_t e = 0; e < 8; ++e) {
            double mean = 0;
            for (int64_t j = 0; j < seen; ++j)
              mean += inputs.v().At(0, 0, j, e);
            mean /= double(seen);
            if (zero_v) {
              EXPECT_EQ(Out(r, row, 8, e), 0.0f);
            } else {
              EXPECT_NEAR(Out(r, row, 8, e), mean, kOutTolerance * r.out_scale)
                  << "Tk " << tk << " row " << row;
            }
          }
          const double lse = std::log(double(seen));
          EXPECT_NEAR(r.lse[static_cast<size_t>(row)], lse,
                      kLseTolerance * std::fmax(1.0, lse))
              << "Tk " << tk;
        }
      }
      EXPECT_LE(r.max_out_error, kOutTolerance);
      EXPECT_LE(r.max_lse_error, kLseTolerance);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, RobustnessNumerics,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

}  // namespace
}  // namespace sdpa_test
