// The oracle against numbers worked out by hand. Every other correctness test
// trusts ReferenceAttention, so each case here pins one rule of sdpa.h with
// values that a plausible mistake would change.
#include "src/reference.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sdpa/sdpa.h"
#include "tests/test_util.h"

namespace {

using sdpa_testing::BoolTensor;
using sdpa_testing::F32Tensor;
using sdpa_testing::Layout;
using sdpa_testing::MakeArgs;

constexpr double kExact = 1e-12;  // double arithmetic on a handful of terms
const double kInf = std::numeric_limits<double>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Outputs {
  std::vector<double> out, lse;
};

Outputs RunReference(const sdpa_attention_args& args) {
  Outputs o;
  sdpa::ReferenceAttention(args, &o.out, &o.lse);
  return o;
}

// One head, Dk = 1: q_i = 1, k_j = j, so the score of key j is j * scale,
// and v_j = 10^j so every weight shows up in a separate decimal digit.
struct Ramp {
  F32Tensor q, k, v, out;
  explicit Ramp(int64_t q_len, int64_t kv_len)
      : q({1, 1, q_len, 1}),
        k({1, 1, kv_len, 1}),
        v({1, 1, kv_len, 1}),
        out({1, 1, q_len, 1}) {
    q.Fill([](int64_t, int64_t, int64_t, int64_t) { return 1.0f; });
    k.Fill([](int64_t, int64_t, int64_t j, int64_t) { return float(j); });
    v.Fill([](int64_t, int64_t, int64_t j, int64_t) {
      return float(std::pow(10.0, double(j)));
    });
  }
  sdpa_attention_args Args() {
    sdpa_attention_args args =
        MakeArgs(q.view(), k.view(), v.view(), out.view());
    args.scale = 1.0f;
    return args;
  }
};

// Softmax-weighted mean of 10^j over keys `first..last` with scores j:
// sum e^j 10^j / sum e^j, and its lse log sum e^j.
double RampOut(int64_t first, int64_t last) {
  double num = 0, den = 0;
  for (int64_t j = first; j <= last; ++j) {
    num += std::exp(double(j)) * std::pow(10.0, double(j));
    den += std::exp(double(j));
  }
  return num / den;
}
double RampLse(int64_t first, int64_t last) {
  double den = 0;
  for (int64_t j = first; j <= last; ++j) den += std::exp(double(j));
  return std::log(den);
}

TEST(Reference, OneKeyGivesItsValueRow) {
  F32Tensor q({1, 1, 2, 3}), k({1, 1, 1, 3}), v({1, 1, 1, 2}),
      out({1, 1, 2, 2});
  q.Fill([](int64_t, int64_t, int64_t s, int64_t d) {
    return float(s + 1) * float(d - 1);
  });
  k.Fill([](int64_t, int64_t, int64_t, int64_t d) { return float(d) + 0.5f; });
  v.Fill([](int64_t, int64_t, int64_t, int64_t e) {
    return e == 0 ? 3.0f : -4.0f;
  });
  sdpa_attention_args args = MakeArgs(q.view(), k.view(), v.view(), out.view());
  args.scale = 0.5f;
  const Outputs o = RunReference(args);
  ASSERT_EQ(o.out.size(), 4u);
  ASSERT_EQ(o.lse.size(), 2u);
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(o.out[2 * s], 3.0);
    EXPECT_EQ(o.out[2 * s + 1], -4.0);
    // q_s . k = (s+1) * (-1*0.5 + 0*1.5 + 1*2.5) = 2(s+1); lse = 0.5 * that.
    EXPECT_NEAR(o.lse[s], double(s + 1), kExact);
  }
}

TEST(Reference, EqualScoresAverageTheValues) {
  F32Tensor q({1, 1, 1, 2}), k({1, 1, 4, 2}), v({1, 1, 4, 1}),
      out({1, 1, 1, 1});
  q.Fill([](int64_t, int64_t, int64_t, int64_t) { return 0.0f; });
  k.Fill(
      [](int64_t, int64_t, int64_t j, int64_t d) { return float(j * 7 + d); });
  v.Fill([](int64_t, int64_t, int64_t j, int64_t) { return float(j * j); });
  const Outputs o =
      RunReference(MakeArgs(q.view(), k.view(), v.view(), out.view()));
  EXPECT_NEAR(o.out[0], (0 + 1 + 4 + 9) / 4.0, kExact);
  EXPECT_NEAR(o.lse[0], std::log(4.0), kExact);
}

TEST(Reference, ScoresWeightTheValues) {
  Ramp ramp(1, 3);
  const Outputs o = RunReference(ramp.Args());
  // Weights e^0, e^1, e^2 over 1, 10, 100.
  const double den = 1 + std::exp(1.0) + std::exp(2.0);
  EXPECT_NEAR(o.out[0], (1 + 10 * std::exp(1.0) + 100 * std::exp(2.0)) / den,
              kExact);
  EXPECT_NEAR(o.lse[0], std::log(den), kExact);
}

TEST(Reference, DefaultScaleIsOneOverSqrtHeadDim) {
  F32Tensor q({1, 1, 1, 4}), k({1, 1, 1, 4}), v({1, 1, 1, 1}),
      out({1, 1, 1, 1});
  q.Fill([](int64_t, int64_t, int64_t, int64_t) { return 1.0f; });
  k.Fill([](int64_t, int64_t, int64_t, int64_t d) { return float(d); });
  v.Fill([](int64_t, int64_t, int64_t, int64_t) { return 1.0f; });
  sdpa_attention_args args = MakeArgs(q.view(), k.view(), v.view(), out.view());
  args.scale = 0.0f;
  EXPECT_NEAR(RunReference(args).lse[0], (0 + 1 + 2 + 3) / 2.0, kExact);
  args.scale = -2.0f;  // negative scales are taken as given
  EXPECT_NEAR(RunReference(args).lse[0], -12.0, kExact);
}

TEST(Reference, CausalTopLeftSquare) {
  Ramp ramp(3, 3);
  sdpa_attention_args args = ramp.Args();
  args.causal = SDPA_CAUSAL_TOP_LEFT;
  const Outputs o = RunReference(args);
  EXPECT_NEAR(o.out[0], 1.0, kExact);
  EXPECT_NEAR(o.out[1], (1 + 10 * std::exp(1.0)) / (1 + std::exp(1.0)), kExact);
  EXPECT_NEAR(o.out[2], RampOut(0, 2), kExact);
  EXPECT_NEAR(o.lse[0], 0.0, kExact);
  EXPECT_NEAR(o.lse[1], std::log(1 + std::exp(1.0)), kExact);
  EXPECT_NEAR(o.lse[2], RampLse(0, 2), kExact);
}

// Tq = 2, Tk = 4. Top-left: query i sees keys 0..i. Bottom-right: the last
// query sees every key, so query i sees 0..i+2. Without causal, all.
TEST(Reference, CausalAlignmentsWithMoreKeysThanQueries) {
  struct Expect {
    sdpa_causal causal;
    int64_t last_key[2];
  };
  for (const Expect& e : {Expect{SDPA_CAUSAL_TOP_LEFT, {0, 1}},
                          Expect{SDPA_CAUSAL_BOTTOM_RIGHT, {2, 3}},
                          Expect{SDPA_CAUSAL_NONE, {3, 3}}}) {
    SCOPED_TRACE(e.causal);
    Ramp ramp(2, 4);
    sdpa_attention_args args = ramp.Args();
    args.causal = e.causal;
    const Outputs o = RunReference(args);
    for (int i = 0; i < 2; ++i) {
      EXPECT_NEAR(o.out[i], RampOut(0, e.last_key[i]), 1e-12 * o.out[i]);
      EXPECT_NEAR(o.lse[i], RampLse(0, e.last_key[i]), kExact);
    }
  }
}

// Tq = 3, Tk = 2 bottom-right: d(i) = i - 1, so query 0 sees no key.
TEST(Reference, BottomRightWithMoreQueriesThanKeysHidesEarlyQueries) {
  Ramp ramp(3, 2);
  sdpa_attention_args args = ramp.Args();
  args.causal = SDPA_CAUSAL_BOTTOM_RIGHT;
  const Outputs o = RunReference(args);
  EXPECT_EQ(o.out[0], 0.0);
  EXPECT_EQ(o.lse[0], -kInf);
  EXPECT_NEAR(o.out[1], 1.0, kExact);
  EXPECT_NEAR(o.out[2], RampOut(0, 1), kExact);
}

// Tq = Tk = 5, no causal: d(i) = i; keys d(i)-left .. d(i)+right.
TEST(Reference, Windows) {
  struct Expect {
    int64_t left, right;
    sdpa_causal causal;
  };
  for (const Expect& e :
       {Expect{1, 0, SDPA_CAUSAL_NONE}, Expect{0, 1, SDPA_CAUSAL_NONE},
        Expect{2, -1, SDPA_CAUSAL_NONE}, Expect{-1, 2, SDPA_CAUSAL_NONE},
        Expect{1, 3, SDPA_CAUSAL_TOP_LEFT}}) {
    SCOPED_TRACE("left " + std::to_string(e.left) + " right " +
                 std::to_string(e.right));
    Ramp ramp(5, 5);
    sdpa_attention_args args = ramp.Args();
    args.window_left = e.left;
    args.window_right = e.right;
    args.causal = e.causal;
    const Outputs o = RunReference(args);
    for (int64_t i = 0; i < 5; ++i) {
      const int64_t first = e.left < 0 ? 0 : std::max<int64_t>(0, i - e.left);
      int64_t last = e.right < 0 ? 4 : std::min<int64_t>(4, i + e.right);
      if (e.causal != SDPA_CAUSAL_NONE) last = std::min(last, i);
      EXPECT_NEAR(o.out[i], RampOut(first, last), 1e-12 * o.out[i]) << i;
      EXPECT_NEAR(o.lse[i], RampLse(first, last), kExact) << i;
    }
  }
}

TEST(Reference, AdditiveMaskAddsToTheScaledScore) {
  F32Tensor q({1, 1, 1, 1}), k({1, 1, 2, 1}), v({1, 1, 2, 1}),
      out({1, 1, 1, 1});
  F32Tensor mask({1, 1, 1, 2});
  q.Fill([](int64_t, int64_t, int64_t, int64_t) { return 2.0f; });
  k.Fill([](int64_t, int64_t, int64_t, int64_t) { return 1.0f; });
  v.Fill([](int64_t, int64_t, int64_t j, int64_t) {
    return j == 0 ? 4.0f : 8.0f;
  });
  mask.Fill([](int64_t, int64_t, int64_t, int64_t j) {
    return j == 0 ? 0.0f : float(std::log(3.0));
  });
  sdpa_attention_args args = MakeArgs(q.view(), k.view(), v.view(), out.view());
  args.scale = 0.25f;
  args.mask = mask.view();
  const Outputs o = RunReference(args);
  // Scores 0.5 and 0.5 + log 3: weights 1/4 and 3/4.
  EXPECT_NEAR(o.out[0], 4 * 0.25 + 8 * 0.75, 1e-7);
  EXPECT_NEAR(o.lse[0], 0.5 + std::log(4.0), 1e-7);
}

TEST(Reference, BoolMaskKeepsNonzero) {
  Ramp ramp(1, 3);
  BoolTensor keep({1, 1, 1, 3});
  keep.Fill([](int64_t, int64_t, int64_t, int64_t j) -> uint8_t {
    return j == 1 ? 0 : 7;  // any nonzero byte keeps
  });
  sdpa_attention_args args = ramp.Args();
  args.mask = keep.view();
  const Outputs o = RunReference(args);
  const double den = 1 + std::exp(2.0);
  EXPECT_NEAR(o.out[0], (1 + 100 * std::exp(2.0)) / den, kExact);
  EXPECT_NEAR(o.lse[0], std::log(den), kExact);
}

TEST(Reference, FullyMaskedRowGivesZeroAndMinusInfinity) {
  Ramp ramp(2, 3);
  BoolTensor keep({1, 1, 2, 3});
  keep.Fill([](int64_t, int64_t, int64_t i, int64_t) -> uint8_t {
    return i == 0 ? 0 : 1;
  });
  F32Tensor additive({1, 1, 2, 3});
  additive.Fill([](int64_t, int64_t, int64_t i, int64_t) {
    return i == 0 ? -std::numeric_limits<float>::infinity() : 0.0f;
  });
  for (const sdpa_tensor* mask : {keep.view(), additive.view()}) {
    // NaN in the values of removed keys must not leak into the row.
    ramp.v.at(0, 0, 0, 0) = kNaN;
    sdpa_attention_args args = ramp.Args();
    args.mask = mask;
    const Outputs o = RunReference(args);
    EXPECT_EQ(o.out[0], 0.0);
    EXPECT_EQ(o.lse[0], -kInf);
    EXPECT_TRUE(std::isnan(o.out[1]));  // row 1 does see the NaN value
    EXPECT_NEAR(o.lse[1], RampLse(0, 2), kExact);
  }
}

TEST(Reference, MinusInfinityMaskRemovesAKeyEvenWithNaNValue) {
  Ramp ramp(1, 3);
  ramp.v.at(0, 0, 2, 0) = kNaN;
  ramp.k.at(0, 0, 2, 0) = kNaN;
  F32Tensor mask({1, 1, 1, 3});
  mask.Fill([](int64_t, int64_t, int64_t, int64_t j) {
    return j == 2 ? -std::numeric_limits<float>::infinity() : 0.0f;
  });
  sdpa_attention_args args = ramp.Args();
  args.mask = mask.view();
  const Outputs o = RunReference(args);
  EXPECT_NEAR(o.out[0], RampOut(0, 1), kExact);
  EXPECT_NEAR(o.lse[0], RampLse(0, 1), kExact);
}

TEST(Reference, NaNInAQueryPoisonsOnlyItsRow) {
  F32Tensor q({1, 1, 2, 2}), k({1, 1, 3, 2}), v({1, 1, 3, 2}),
      out({1, 1, 2, 2});
  std::mt19937 rng(1);
  q.FillUniform(rng);
  k.FillUniform(rng);
  v.FillUniform(rng);
  q.at(0, 0, 1, 0) = kNaN;
  const Outputs o =
      RunReference(MakeArgs(q.view(), k.view(), v.view(), out.view()));
  EXPECT_FALSE(std::isnan(o.out[0]) || std::isnan(o.out[1]) ||
               std::isnan(o.lse[0]));
  EXPECT_TRUE(std::isnan(o.out[2]) && std::isnan(o.out[3]) &&
              std::isnan(o.lse[1]));
}

// Hq = 4 over Hkv = 2: query heads 0, 1 use kv head 0 and 2, 3 kv head 1
// (not h % Hkv).
TEST(Reference, GroupedQueryHeadsShareKvHeads) {
  F32Tensor q({1, 4, 1, 2}), k({1, 2, 3, 2}), v({1, 2, 3, 1}),
      out({1, 4, 1, 1});
  std::mt19937 rng(2);
  q.FillUniform(rng);
  k.FillUniform(rng);
  v.Fill([](int64_t, int64_t h, int64_t, int64_t) {
    return h == 0 ? 10.0f : 20.0f;
  });
  const Outputs o =
      RunReference(MakeArgs(q.view(), k.view(), v.view(), out.view()));
  EXPECT_NEAR(o.out[0], 10.0, kExact);
  EXPECT_NEAR(o.out[1], 10.0, kExact);
  EXPECT_NEAR(o.out[2], 20.0, kExact);
  EXPECT_NEAR(o.out[3], 20.0, kExact);
}

// Dv != Dk, batch > 1, and output order [B, Hq, Tq, Dv].
TEST(Reference, OutputIsContiguousBatchHeadQueryValue) {
  F32Tensor q({2, 1, 2, 3}), k({2, 1, 1, 3}), v({2, 1, 1, 4}),
      out({2, 1, 2, 4});
  q.Fill([](int64_t, int64_t, int64_t, int64_t) { return 0.0f; });
  k.Fill([](int64_t, int64_t, int64_t, int64_t) { return 0.0f; });
  v.Fill([](int64_t b, int64_t, int64_t, int64_t e) {
    return float(100 * b + e);
  });
  const Outputs o =
      RunReference(MakeArgs(q.view(), k.view(), v.view(), out.view()));
  ASSERT_EQ(o.out.size(), 16u);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t e = 0; e < 4; ++e)
        EXPECT_EQ(o.out[size_t((b * 2 + i) * 4 + e)], double(100 * b + e));
}

// The same logical tensors in other layouts (BSHD, padded rows, a sequence
// stored backwards, a mask broadcast by stride 0 instead of size 1) give
// the same numbers exactly.
TEST(Reference, LayoutDoesNotMatter) {
  std::mt19937 rng(9);
  F32Tensor q({2, 2, 3, 4}), k({2, 1, 5, 4}), v({2, 1, 5, 3}),
      out({2, 2, 3, 3});
  F32Tensor mask({1, 1, 3, 5});
  q.FillUniform(rng);
  k.FillUniform(rng);
  v.FillUniform(rng);
  mask.FillUniform(rng);
  sdpa_attention_args args = MakeArgs(q.view(), k.view(), v.view(), out.view());
  args.mask = mask.view();
  args.causal = SDPA_CAUSAL_BOTTOM_RIGHT;
  const Outputs want = RunReference(args);

  F32Tensor q2({2, 2, 3, 4}, Layout::kBshd, 1),
      k2({2, 1, 5, 4}, Layout::kBhsd, 3);
  F32Tensor v2({2, 1, 5, 3}, Layout::kBshd, 2);
  q2.Fill([&](int64_t b, int64_t h, int64_t s, int64_t d) {
    return q.at(b, h, s, d);
  });
  v2.Fill([&](int64_t b, int64_t h, int64_t s, int64_t d) {
    return v.at(b, h, s, d);
  });
  // k2 stores the sequence backwards.
  k2.Fill([&](int64_t b, int64_t h, int64_t s, int64_t d) {
    return k.at(b, h, 4 - s, d);
  });
  sdpa_tensor& kr = *k2.view();
  kr.data = static_cast<float*>(kr.data) + 4 * kr.strides[2];
  kr.strides[2] = -kr.strides[2];
  sdpa_tensor mask2 = *mask.view();
  mask2.shape[0] = 2;
  mask2.shape[1] = 2;
  mask2.strides[0] = mask2.strides[1] = 0;
  sdpa_attention_args args2 = MakeArgs(q2.view(), &kr, v2.view(), out.view());
  args2.mask = &mask2;
  args2.causal = SDPA_CAUSAL_BOTTOM_RIGHT;
  const Outputs got = RunReference(args2);
  EXPECT_EQ(got.out, want.out);
  EXPECT_EQ(got.lse, want.lse);
}

TEST(Reference, LseIsOptional) {
  Ramp ramp(2, 2);
  std::vector<double> out;
  sdpa::ReferenceAttention(ramp.Args(), &out, nullptr);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NEAR(out[1], RampOut(0, 1), kExact);
}

}  // namespace
