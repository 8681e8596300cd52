// BF16 and F16 tensors (any mix of them with F32 for Q, K, V and the output)
// on every ISA: the kernel widens inputs when it packs them and rounds the
// output once; the reference reads the same rounded inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

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

// Decoding reads 16-bit K (and V, where the wide P·V tiles take every
// column: Dv a multiple of 8 vectors) in place, widened in registers
// rather than packed. Every row count the decode tiles take (1-8 rows per
// KV head), K/V in place or packed, dims of whole vectors or not, the
// layouts with unit element stride, and more than one 512-key block.
TEST_P(KernelDtypes, DecodeReadsHalfKeysAndValuesInPlace) {
  constexpr Mix kDecodeMixes[] = {
      {SDPA_DTYPE_F32, SDPA_DTYPE_BF16, SDPA_DTYPE_BF16, SDPA_DTYPE_F32},
      {SDPA_DTYPE_F32, SDPA_DTYPE_F16, SDPA_DTYPE_F16, SDPA_DTYPE_F32},
      {SDPA_DTYPE_BF16, SDPA_DTYPE_BF16, SDPA_DTYPE_F16, SDPA_DTYPE_F16},
      {SDPA_DTYPE_F32, SDPA_DTYPE_F16, SDPA_DTYPE_F32, SDPA_DTYPE_F32},
      {SDPA_DTYPE_F32, SDPA_DTYPE_F32, SDPA_DTYPE_BF16, SDPA_DTYPE_F32},
  };
  constexpr Layout kLayouts[] = {Layout::kBhsd, Layout::kBshd, Layout::kPadded,
                                 Layout::kFusedSlice, Layout::kReversed};
  uint32_t seed = 1;
  for (const Mix& mix : kDecodeMixes) {
    for (int64_t group : {1, 2, 3, 4, 6, 8}) {
      Case c;
      c.batch = 2, c.kv_heads = 2, c.q_heads = 2 * group;
      c.q_len = group == 8 ? 1 : 2 - group % 2, c.kv_len = 1031;
      c.head_dim = group == 3 ? 72 : 128;
      c.value_dim = group == 2 ? 256 : group == 6 ? 40 : 128;
      c.layout = kLayouts[seed % 5];  // each layout meets each row count
      c.q_dtype = mix.q, c.k_dtype = mix.k, c.v_dtype = mix.v,
      c.out_dtype = mix.out;
      c.seed = seed++;
      Check(c);
    }
  }
}

// A masked key whose 16-bit V is Inf must not reach any row (0 * Inf), read
// in place as when packed: the block's V is checked and hidden keys skipped.
TEST_P(KernelDtypes, DecodeHalfValuesBehindMaskStayHidden) {
  for (sdpa_dtype type : {SDPA_DTYPE_F16, SDPA_DTYPE_BF16}) {
    for (int64_t group : {1, 4}) {
      Case c;
      c.kv_heads = 2, c.q_heads = 2 * group, c.q_len = 1, c.kv_len = 700;
      c.head_dim = 128, c.value_dim = 128;
      c.k_dtype = c.v_dtype = type;
      c.mask = MaskKind::kBool;
      c.mask_batch_1 = c.mask_heads_1 = c.mask_rows_1 = true;
      Inputs inputs(c);
      int64_t hidden = -1;
      for (int64_t j = 0; j < c.kv_len && hidden < 0; ++j) {
        if (inputs.mask_bits()[static_cast<size_t>(j)] == 0) hidden = j;
      }
      ASSERT_GE(hidden, 0);
      for (int64_t h = 0; h < c.kv_heads; ++h) {
        inputs.v().At(0, h, hidden, 5) = std::numeric_limits<float>::infinity();
      }
      const Result r = inputs.Run(ContextFor(GetParam(), 1));
      ASSERT_EQ(r.status, SDPA_OK) << r.error;
      for (float x : r.out) ASSERT_TRUE(std::isfinite(x)) << c.Name();
      EXPECT_LE(r.max_out_error, kOutTolerance) << c.Name();
    }
  }
}

// A prefill case of the BF16 tests: the shape, a layout and visibility
// rules cycled through by seed (none, top-left causal, bottom-right causal
// with an additive mask, a window, a bool mask), every layout in turn.
struct PrefillShape {
  int64_t q_heads, kv_heads, q_len, kv_len, head_dim, value_dim;
};

Case PrefillCase(const PrefillShape& shape, uint32_t seed) {
  constexpr Layout kLayouts[] = {Layout::kBhsd,     Layout::kBshd,
                                 Layout::kPadded,   Layout::kFusedSlice,
                                 Layout::kReversed, Layout::kDimStrided};
  Case c;
  c.q_heads = shape.q_heads, c.kv_heads = shape.kv_heads;
  c.q_len = shape.q_len, c.kv_len = shape.kv_len;
  c.head_dim = shape.head_dim, c.value_dim = shape.value_dim;
  c.layout = kLayouts[seed % 6];
  switch (seed % 5) {
    case 1:
      c.causal = SDPA_CAUSAL_TOP_LEFT;
      break;
    case 2:
      c.causal = SDPA_CAUSAL_BOTTOM_RIGHT;
      c.mask = MaskKind::kAdditive;
      break;
    case 3:
      c.window_left = 37, c.window_right = 5;
      break;
    case 4:
      c.mask = MaskKind::kBool;
      break;
    default:
      break;
  }
  c.seed = seed;
  return c;
}

// BF16 Q and K in prefill. On AVX3_ZEN4 Q·Kᵀ runs on BF16 dot products
// (K read in place in pairs, Q packed in pairs carrying a power of two of
// the scale); elsewhere, and where a case falls outside that path (an odd
// head dim, K without unit element stride), on the f32 tiles. Tiles of one
// to three vectors of rows and a partial last tile, groups of 8 keys and
// the remainder, several key blocks, GQA, masks and causal/window rules,
// every layout, V and output in BF16, F16 or F32.
TEST_P(KernelDtypes, PrefillBf16QueriesAndKeys) {
  constexpr PrefillShape kShapes[] = {
      {1, 1, 9, 1, 2, 3},       {2, 1, 17, 300, 64, 64},
      {1, 1, 48, 263, 66, 40},  {4, 2, 50, 600, 128, 128},
      {1, 1, 200, 57, 130, 16}, {1, 1, 20, 40, 7, 8},
      {3, 3, 33, 129, 256, 32}, {2, 2, 100, 517, 62, 24},
  };
  constexpr sdpa_dtype kValueTypes[] = {SDPA_DTYPE_BF16, SDPA_DTYPE_F32,
                                        SDPA_DTYPE_F16};
  uint32_t seed = 1;
  for (const PrefillShape& shape : kShapes) {
    for (int variant = 0; variant < 3; ++variant) {
      Case c = PrefillCase(shape, seed++);
      c.batch = variant == 2 ? 2 : 1;
      c.q_dtype = c.k_dtype = SDPA_DTYPE_BF16;
      c.v_dtype = kValueTypes[variant];
      c.out_dtype = variant == 0 ? SDPA_DTYPE_BF16 : SDPA_DTYPE_F32;
      Check(c);
    }
  }
}

// SDPA_FLAG_BF16_WEIGHTS: with BF16 V on AVX3_ZEN4 prefill runs P·V on
// BF16 dot products (weights rounded to BF16, V packed in key pairs), within
// the bound sdpa.h states; everywhere else (other ISAs, F32/F16 V, V
// without unit element stride) the flag changes nothing and the f32
// tolerance holds. Rows per KV head 9-200 (tiles of 1-3 vectors, partial
// ones), odd and even key counts (a last key without a partner), 1-600 keys
// (several 256-key blocks), windows and causal rows whose first visible key
// is odd (pairs that start a key early), masks, GQA, every layout.
TEST_P(KernelDtypes, PrefillBf16WeightsWithinTheirBound) {
  constexpr PrefillShape kShapes[] = {
      {1, 1, 9, 1, 8, 3},       {2, 1, 17, 301, 64, 64},
      {1, 1, 48, 263, 66, 40},  {4, 2, 50, 600, 128, 128},
      {1, 1, 200, 57, 130, 17}, {1, 1, 20, 2, 7, 8},
      {3, 3, 33, 129, 32, 256}, {2, 2, 100, 517, 62, 24},
  };
  constexpr sdpa_dtype kValueTypes[] = {SDPA_DTYPE_BF16, SDPA_DTYPE_BF16,
                                        SDPA_DTYPE_F32, SDPA_DTYPE_F16};
  uint32_t seed = 1;
  for (const PrefillShape& shape : kShapes) {
    for (int variant = 0; variant < 4; ++variant) {
      Case c = PrefillCase(shape, seed++);
      c.batch = variant == 1 ? 2 : 1;
      c.q_dtype = c.k_dtype = variant == 1 ? SDPA_DTYPE_F32 : SDPA_DTYPE_BF16;
      c.v_dtype = kValueTypes[variant];
      c.out_dtype = variant == 0 ? SDPA_DTYPE_BF16 : SDPA_DTYPE_F32;
      c.flags = SDPA_FLAG_BF16_WEIGHTS;
      const bool rounded = GetParam() == SDPA_ISA_AVX3_ZEN4 &&
                           c.v_dtype == SDPA_DTYPE_BF16 &&
                           c.layout != Layout::kDimStrided;
      Inputs inputs(c);
      const Result r = inputs.Run(ContextFor(GetParam(), 2));
      ASSERT_EQ(r.status, SDPA_OK) << c.Name() << ": " << r.error;
      EXPECT_LE(r.max_out_error,
                rounded ? kBf16WeightsTolerance : kOutTolerance)
          << c.Name() << Types(c);
      EXPECT_LE(r.max_lse_error, kLseTolerance) << c.Name() << Types(c);
      EXPECT_TRUE(r.padding_intact) << c.Name() << Types(c);
    }
  }
}

// Inf and NaN in BF16 V with SDPA_FLAG_BF16_WEIGHTS: a block holding them
// runs P·V on f32 (a hidden key's weight of 0 times Inf would be NaN), so
// Inf/NaN behind the mask stay hidden and visible ones reach the output as
// in the definition; the other blocks keep the bound.
TEST_P(KernelDtypes, Bf16WeightsKeepNonFiniteValuesHidden) {
  for (int planted = 0; planted < 2; ++planted) {
    Case c;
    c.q_heads = 2, c.kv_heads = 1, c.q_len = 40, c.kv_len = 700;
    c.head_dim = 32, c.value_dim = 48;
    c.q_dtype = c.k_dtype = c.v_dtype = SDPA_DTYPE_BF16;
    c.causal = SDPA_CAUSAL_TOP_LEFT;
    c.flags = SDPA_FLAG_BF16_WEIGHTS;
    c.seed = 11;
    Inputs inputs(c);
    // Key 600 (third block) is hidden from every query (causal, Tq 40);
    // key 3 is visible to queries 3..39.
    inputs.v().At(0, 0, 600, 5) = std::numeric_limits<float>::infinity();
    inputs.v().At(0, 0, 601, 6) = std::numeric_limits<float>::quiet_NaN();
    if (planted == 1) {
      inputs.v().At(0, 0, 3, 7) = std::numeric_limits<float>::infinity();
    }
    const Result r = inputs.Run(ContextFor(GetParam(), 2));
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    // The comparison counts NaN/Inf against a finite reference (or the
    // reverse) as an infinite error.
    EXPECT_LE(r.max_out_error, GetParam() == SDPA_ISA_AVX3_ZEN4
                                   ? kBf16WeightsTolerance
                                   : kOutTolerance)
        << "planted " << planted;
    EXPECT_LE(r.max_lse_error, kLseTolerance);
  }
}

// SDPA_FLAG_BF16_WEIGHTS with BF16 V that is all subnormal (or below
// 2^-64): the dot instruction would read it as 0 (every output 0), so such
// blocks run P·V on f32 and the bound, relative to max|V|, still holds.
TEST_P(KernelDtypes, Bf16WeightsWithTinyValues) {
  for (float stddev : {1e-39f, 1e-25f}) {
    Case c;
    c.q_heads = 2, c.kv_heads = 1, c.q_len = 24, c.kv_len = 40;
    c.head_dim = 16, c.value_dim = 32;
    c.q_dtype = c.k_dtype = c.v_dtype = SDPA_DTYPE_BF16;
    c.flags = SDPA_FLAG_BF16_WEIGHTS;
    c.seed = 5;
    Inputs inputs(c);
    std::mt19937 rng(3);
    inputs.v().FillNormal(rng, stddev);
    double v_max = 0;
    for (int64_t j = 0; j < c.kv_len; ++j) {
      for (int64_t e = 0; e < c.value_dim; ++e) {
        v_max = std::max(v_max, std::fabs(double{inputs.v().Get(0, 0, j, e)}));
      }
    }
    ASSERT_GT(v_max, 0.0);
    const Result r = inputs.Run(ContextFor(GetParam(), 2));
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    // Result's errors are relative to max(max|V|, 1e-30): rescale them to
    // this V's own maximum.
    EXPECT_LE(r.max_out_error * r.out_scale / v_max,
              GetParam() == SDPA_ISA_AVX3_ZEN4 ? kBf16WeightsTolerance
                                               : kOutTolerance)
        << "stddev " << stddev << ", max|V| " << v_max;
  }
}

// BF16 Q and K in decoding (1-8 rows per KV head): on AVX3_ZEN4 the dot
// form on BF16 dot products, K read in place, whatever the head dim (its
// last part vector read masked: dims below, between and past whole
// 32-element vectors, odd ones too), over two 512-key blocks and a
// remainder; elsewhere the f32 dot form.
TEST_P(KernelDtypes, DecodeBf16QueriesAndKeysAnyHeadDim) {
  constexpr Layout kLayouts[] = {Layout::kBhsd, Layout::kBshd, Layout::kPadded,
                                 Layout::kFusedSlice, Layout::kReversed};
  uint32_t seed = 1;
  for (int64_t dim : {2, 7, 33, 72, 80, 130}) {
    for (int64_t group : {1, 3, 4, 8}) {
      Case c;
      c.kv_heads = 2, c.q_heads = 2 * group;
      c.q_len = group == 8 ? 1 : 2 - group % 2, c.kv_len = 1031;
      c.head_dim = dim, c.value_dim = group == 3 ? 40 : 64;
      c.layout = kLayouts[seed % 5];
      c.q_dtype = c.k_dtype = SDPA_DTYPE_BF16;
      c.v_dtype = seed % 2 ? SDPA_DTYPE_BF16 : SDPA_DTYPE_F32;
      c.out_dtype = seed % 3 ? SDPA_DTYPE_F32 : SDPA_DTYPE_BF16;
      c.seed = seed++;
      Check(c);
    }
  }
}

// Scales whose power of two BF16 Q cannot carry exactly (it would make
// elements subnormal, which the dot instruction reads as 0, or overflow an
// element) or that are negative: such tasks take the f32 tiles, and results
// stay those of the reference. A huge scale that Q can carry stays on the
// dot path.
TEST_P(KernelDtypes, PrefillBf16ScalesOutsideTheDotPath) {
  for (float scale : {1e-36f, 1e30f, -0.25f, 4.0f}) {
    Case c;
    c.q_heads = 2, c.kv_heads = 1, c.q_len = 40, c.kv_len = 70;
    c.head_dim = 32, c.value_dim = 16;
    c.q_dtype = c.k_dtype = SDPA_DTYPE_BF16;
    c.scale = scale;
    c.seed = 7;
    Inputs inputs(c);
    if (scale == 4.0f) {
      // 3e38 * 2^2 overflows; K is 0 in that dim, so every score is finite.
      inputs.q().At(0, 1, 11, 5) = 3e38f;
      for (int64_t j = 0; j < c.kv_len; ++j) inputs.k().At(0, 0, j, 5) = 0;
    }
    const Result r = inputs.Run(ContextFor(GetParam(), 2));
    ASSERT_EQ(r.status, SDPA_OK) << r.error;
    EXPECT_LE(r.max_out_error, kOutTolerance) << "scale " << scale;
    EXPECT_LE(r.max_lse_error, kLseTolerance) << "scale " << scale;
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelDtypes,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

}  // namespace
}  // namespace sdpa_test
