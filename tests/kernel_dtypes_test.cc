// BF16 and F16 tensors (any mix of them with F32 for Q, K, V and the output)
// on every ISA: the kernel widens inputs when it packs them and rounds the
// output once; the reference reads the same rounded inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

class KernelDtypes : public ::testing::TestWithParam<uint64_t> {
 protected:
  void Check(const Case& c) {
    Inputs inputs(c);
    const Result r = inputs.Run(ContextFor(GetParam(), 2));
    ASSERT_EQ(r.status, SDPA_OK) << c.Name() << ": " << r.error;
    EXPECT_LE(r.max_out_error, kOutTolerance) << c.Name() << Types(c);
    EXPECT_LE(r.max_lse_error, kLseTolerance) << c.Name() << Types(c);
    EXPECT_TRUE(r.padding_intact) << c.Name() << Types(c);
  }
  static std::string Types(const Case& c) {
    return " dtypes q" + std::to_string(c.q_dtype) + " k" +
           std::to_string(c.k_dtype) + " v" + std::to_string(c.v_dtype) +
           " out" + std::to_string(c.out_dtype);
  }
};

struct Mix {
  sdpa_dtype q, k, v, out;
};
constexpr Mix kMixes[] = {
    {SDPA_DTYPE_BF16, SDPA_DTYPE_BF16, SDPA_DTYPE_BF16, SDPA_DTYPE_BF16},
    {SDPA_DTYPE_F16, SDPA_DTYPE_F16, SDPA_DTYPE_F16, SDPA_DTYPE_F16},
    {SDPA_DTYPE_F32, SDPA_DTYPE_BF16, SDPA_DTYPE_BF16, SDPA_DTYPE_F32},
    {SDPA_DTYPE_F16, SDPA_DTYPE_F32, SDPA_DTYPE_F16, SDPA_DTYPE_F32},
    {SDPA_DTYPE_F32, SDPA_DTYPE_F32, SDPA_DTYPE_F32, SDPA_DTYPE_BF16},
};

TEST_P(KernelDtypes, MixesShapesAndLayouts) {
  for (const Mix& mix : kMixes) {
    for (Layout layout : {Layout::kBhsd, Layout::kBshd, Layout::kDimStrided}) {
      for (int64_t tq : {1, 4, 37}) {
        Case c;
        c.batch = 2, c.q_heads = 4, c.kv_heads = 2;
        c.q_len = tq, c.kv_len = 150;
        c.head_dim = tq == 37 ? 40 : 64, c.value_dim = tq == 4 ? 19 : 32;
        c.causal = tq == 37 ? SDPA_CAUSAL_BOTTOM_RIGHT : SDPA_CAUSAL_NONE;
        c.mask = tq == 4 ? MaskKind::kBool : MaskKind::kNone;
        c.layout = layout;
        c.q_dtype = mix.q, c.k_dtype = mix.k, c.v_dtype = mix.v,
        c.out_dtype = mix.out;
        Check(c);
      }
    }
  }
}

TEST_P(KernelDtypes, SplitKeysWithHalfOutput) {
  Case c;
  c.q_heads = 2, c.kv_heads = 1, c.q_len = 1, c.kv_len = 3000;
  c.head_dim = 32, c.value_dim = 32;
  c.k_dtype = c.v_dtype = c.out_dtype = SDPA_DTYPE_F16;
  Inputs inputs(c);
  const Result r = inputs.Run(ContextFor(GetParam(), 4));
  ASSERT_EQ(r.status, SDPA_OK) << r.error;
  EXPECT_LE(r.max_out_error, kOutTolerance);
}

TEST_P(KernelDtypes, HalfInfinityAndNaNAreKept) {
  // F16 Inf/NaN must widen to Inf/NaN (not to large finite numbers).
  for (sdpa_dtype type : {SDPA_DTYPE_F16, SDPA_DTYPE_BF16}) {
    Case c;
    c.q_len = 6, c.kv_len = 6, c.head_dim = 16, c.value_dim = 16;
    c.causal = SDPA_CAUSAL_TOP_LEFT;
    c.q_dtype = c.k_dtype = c.v_dtype = type;
    Inputs inputs(c);
    inputs.v().At(0, 0, 3, 0) = std::numeric_limits<float>::infinity();
    inputs.v().At(0, 0, 4, 1) = std::numeric_limits<float>::quiet_NaN();
    const Result r = inputs.Run(ContextFor(GetParam(), 1));
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    for (int64_t i = 0; i < 6; ++i) {
      const float first = r.out[static_cast<size_t>(i * 16)];
      const float second = r.out[static_cast<size_t>(i * 16 + 1)];
      EXPECT_EQ(std::isinf(first), i >= 3) << "row " << i;
      EXPECT_EQ(std::isnan(second), i >= 4) << "row " << i;
    }
    EXPECT_LE(r.max_out_error, kOutTolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelDtypes,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

}  // namespace
}  // namespace sdpa_test
