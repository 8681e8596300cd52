// Every ISA against the reference for each feature of the API: masks (kinds
// and broadcasts), both causal alignments with Tq < Tk and Tq > Tk, sliding
// windows, and strided layouts whose gaps hold NaN.
#include <gtest/gtest.h>

#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

class KernelFeatures : public ::testing::TestWithParam<uint64_t> {
 protected:
  void Check(const Case& c) {
    Inputs inputs(c);
    const Result r = inputs.Run(ContextFor(GetParam(), 2));
    ASSERT_EQ(r.status, SDPA_OK) << c.Name() << ": " << r.error;
    EXPECT_LE(r.max_out_error, kOutTolerance) << c.Name();
    EXPECT_LE(r.max_lse_error, kLseTolerance) << c.Name();
    EXPECT_TRUE(r.padding_intact) << c.Name();
  }
};

TEST_P(KernelFeatures, Masks) {
  for (MaskKind kind : {MaskKind::kAdditive, MaskKind::kBool}) {
    for (int broadcast = 0; broadcast < 8; ++broadcast) {
      for (int64_t tq : {1, 45}) {
        Case c;
        c.batch = 2, c.q_heads = 4, c.kv_heads = 2;
        c.q_len = tq, c.kv_len = 150;
        c.head_dim = 20, c.value_dim = 12;
        c.mask = kind;
        c.mask_batch_1 = broadcast & 1;
        c.mask_heads_1 = broadcast & 2;
        c.mask_rows_1 = broadcast & 4;
        c.causal = tq == 45 ? SDPA_CAUSAL_TOP_LEFT : SDPA_CAUSAL_NONE;
        c.seed = static_cast<uint32_t>(broadcast * 10 + tq);
        Check(c);
      }
    }
  }
}

TEST_P(KernelFeatures, CausalAlignments) {
  const int64_t shapes[][2] = {{50, 50}, {20, 300},  {300, 20}, {1, 257},
                               {257, 1}, {129, 128}, {128, 129}};
  for (const auto& shape : shapes) {
    for (sdpa_causal causal :
         {SDPA_CAUSAL_TOP_LEFT, SDPA_CAUSAL_BOTTOM_RIGHT}) {
      Case c;
      c.q_heads = 3, c.kv_heads = 1;
      c.q_len = shape[0], c.kv_len = shape[1];
      c.head_dim = 32, c.value_dim = 32;
      c.causal = causal;
      Check(c);
    }
  }
}

TEST_P(KernelFeatures, SlidingWindows) {
  const int64_t windows[][2] = {{0, 0},   {5, -1},  {-1, 5},  {16, 16},
                                {127, 0}, {200, 3}, {1, 1000}};
  for (const auto& w : windows) {
    for (sdpa_causal causal :
         {SDPA_CAUSAL_NONE, SDPA_CAUSAL_TOP_LEFT, SDPA_CAUSAL_BOTTOM_RIGHT}) {
      for (int64_t tq : {1, 70, 400}) {
        Case c;
        c.q_heads = 2, c.kv_heads = 2;
        c.q_len = tq, c.kv_len = 333;
        c.head_dim = 16, c.value_dim = 24;
        c.causal = causal;
        c.window_left = w[0], c.window_right = w[1];
        Check(c);
      }
    }
  }
}

TEST_P(KernelFeatures, StridedLayouts) {
  for (Layout layout :
       {Layout::kBhsd, Layout::kBshd, Layout::kPadded, Layout::kFusedSlice,
        Layout::kReversed, Layout::kDimStrided}) {
    for (int64_t tq : {1, 3, 4, 66}) {  // 2, 6, 8 (quad tiles), 132 rows
      Case c;
      c.batch = 2, c.q_heads = 4, c.kv_heads = 2;
      c.q_len = tq, c.kv_len = 140;
      c.head_dim = 33, c.value_dim = 64;
      c.layout = layout;
      c.mask = tq == 66 ? MaskKind::kAdditive : MaskKind::kNone;
      c.causal = tq == 66 ? SDPA_CAUSAL_BOTTOM_RIGHT : SDPA_CAUSAL_NONE;
      Check(c);
    }
  }
}

TEST_P(KernelFeatures, WithoutLse) {
  Case c;
  c.q_len = 30, c.kv_len = 90, c.head_dim = 16, c.value_dim = 16;
  c.want_lse = false;
  Check(c);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelFeatures,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

}  // namespace
}  // namespace sdpa_test
