// Every ISA against the double-precision reference over awkward shapes:
// lengths around the vector and block sizes, head dims from 1 to 256,
// Dv != Dk, and GQA ratios (which also switch between the rows-in-lanes and
// the few-rows dot-product forms of the kernel).
#include <gtest/gtest.h>

#include <limits>

#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

class KernelShapes : public ::testing::TestWithParam<uint64_t> {
 protected:
  sdpa_context* context() { return ContextFor(GetParam(), 2); }
  void Check(const Case& c) {
    Inputs inputs(c);
    Check(c, inputs);
  }
  // For inputs a test has edited (Inputs' hooks) before running.
  void Check(const Case& c, Inputs& inputs) {
    const Result r = inputs.Run(context());
    ASSERT_EQ(r.status, SDPA_OK) << c.Name() << ": " << r.error;
    EXPECT_LE(r.max_out_error, kOutTolerance) << c.Name();
    EXPECT_LE(r.max_lse_error, kLseTolerance) << c.Name();
    EXPECT_TRUE(r.padding_intact) << c.Name();
  }
};

TEST_P(KernelShapes, SequenceLengths) {
  const int64_t lengths[] = {1, 2, 3, 7, 17, 63, 64, 65, 127, 255};
  for (int64_t tq : lengths) {
    for (int64_t tk : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{7},
                       int64_t{17}, int64_t{63}, int64_t{64}, int64_t{65},
                       int64_t{127}, int64_t{255}, int64_t{1000}}) {
      for (sdpa_causal causal :
           {SDPA_CAUSAL_NONE, SDPA_CAUSAL_TOP_LEFT, SDPA_CAUSAL_BOTTOM_RIGHT}) {
        Case c;
        c.q_heads = 2, c.kv_heads = 2;
        c.q_len = tq, c.kv_len = tk;
        c.head_dim = 16, c.value_dim = 16;
        c.causal = causal;
        c.seed = static_cast<uint32_t>(tq * 1000 + tk);
        Check(c);
      }
    }
  }
}

TEST_P(KernelShapes, HeadDims) {
  for (int64_t dim : {1, 3, 8, 16, 31, 64, 80, 96, 128, 192, 256}) {
    for (int64_t value_dim : {dim, int64_t{17}, int64_t{128}}) {
      Case c;
      c.q_heads = 2, c.kv_heads = 1;
      c.q_len = 37, c.kv_len = 101;
      c.head_dim = dim, c.value_dim = value_dim;
      c.seed = static_cast<uint32_t>(dim * 7 + value_dim);
      Check(c);
    }
  }
  // The DeepSeek-style split, and a large Dk with small Dv.
  Case c;
  c.q_len = 20, c.kv_len = 300, c.head_dim = 192, c.value_dim = 128;
  Check(c);
  c.head_dim = 256, c.value_dim = 3;
  Check(c);
}

// Decoding (few rows per KV head) takes the dot-product QKᵀ and, when the
// padded value row holds 8 vectors or more (Dv >= 128 on AVX3, 64 on AVX2,
// 32 on SSE4), one-pass wide P·V tiles over chunks of 8 vectors for up to 6
// rows (2 on 16-register ISAs; on 32-register ISAs 4-6 rows as one 3-row
// tile with the rows past the third accumulated in memory), the rest with
// the narrow tiles; 7-8 rows on 32-register ISAs take 8-row tiles in chunks
// of 3 vectors, then 2, then 1.
// Around those widths and row counts, with and without a mask, over more
// keys than one block.
TEST_P(KernelShapes, DecodeValueWidths) {
  for (int64_t value_dim : {8, 24, 32, 33, 64, 80, 96, 128, 129, 200, 256}) {
    for (int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8}) {  // per KV head: GQA or Tq
      for (bool masked : {false, true}) {
        const int64_t group = rows == 2 || rows == 6 ? rows / 2 : rows;
        Case c;
        c.kv_heads = 2, c.q_heads = 2 * group;
        c.q_len = rows / group, c.kv_len = 700;
        c.head_dim = 40, c.value_dim = value_dim;
        c.mask = masked ? MaskKind::kBool : MaskKind::kNone;
        c.seed = static_cast<uint32_t>(value_dim * 10 + rows);
        Inputs inputs(c);
        if (masked) {
          // Key 600 hidden from every row, and its V rows NaN: the P·V
          // tiles that skip hidden keys (kSkipZeros) must not read them in.
          for (size_t i = 600; i < inputs.mask_bits().size(); i += 700) {
            inputs.mask_bits()[i] = 0;
          }
          for (int64_t h = 0; h < c.kv_heads; ++h) {
            for (int64_t e = 0; e < value_dim; ++e) {
              inputs.v().At(0, h, 600, e) =
                  std::numeric_limits<float>::quiet_NaN();
            }
          }
        }
        Check(c, inputs);
      }
    }
  }
}

// Seven and eight rows per KV head take the quad Q·Kᵀ tiles on AVX-512
// (qk_quad_tile-inl.h) up to a padded head dim of 256, QkDotBlock past it:
// head dims around the quads' four-element steps and that limit, keys
// that leave 4-key and single-key tiles after the 8-key ones, in one block
// and over several (the tiles prefetch K across blocks).
TEST_P(KernelShapes, DecodeHeadDims) {
  for (int64_t dim : {1, 5, 16, 33, 100, 128, 256, 257}) {
    for (int64_t keys : {13, 1031}) {
      for (bool gqa : {false, true}) {  // 8 query heads at Tq 1, or Tq 7
        Case c;
        c.kv_heads = 2, c.q_heads = gqa ? 16 : 2;
        c.q_len = gqa ? 1 : 7, c.kv_len = keys;
        c.head_dim = dim, c.value_dim = 24;
        c.seed = static_cast<uint32_t>(dim * 100 + keys + gqa);
        Check(c);
      }
    }
  }
}

TEST_P(KernelShapes, GroupedQueryAttention) {
  for (int64_t ratio : {1, 2, 4, 8}) {
    for (int64_t tq : {1, 2, 5, 40}) {
      Case c;
      c.batch = 2;
      c.kv_heads = 2, c.q_heads = 2 * ratio;
      c.q_len = tq, c.kv_len = 300;
      c.head_dim = 64, c.value_dim = 32;
      c.causal = tq == 40 ? SDPA_CAUSAL_BOTTOM_RIGHT : SDPA_CAUSAL_NONE;
      c.seed = static_cast<uint32_t>(ratio * 100 + tq);
      Check(c);
    }
  }
  // Multi-query: every query head shares one KV head.
  Case c;
  c.q_heads = 12, c.kv_heads = 1, c.q_len = 33, c.kv_len = 129;
  c.head_dim = 48, c.value_dim = 48;
  Check(c);
}

TEST_P(KernelShapes, ScaleOverride) {
  for (float scale : {0.0f, 1.0f, 0.01f, -0.5f, 3.0f}) {
    Case c;
    c.q_len = 19, c.kv_len = 77, c.head_dim = 24, c.value_dim = 24;
    c.scale = scale;
    Check(c);
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelShapes,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

}  // namespace
}  // namespace sdpa_test
