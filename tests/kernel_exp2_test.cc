// The softmax's fast 2^x on every ISA against std::exp2 in double: its
// accuracy bound, and the exact values the online softmax relies on (2^0 == 1
// so that an unchanged row max rescales by exactly 1; 2^-inf == +0 so that a
// hidden key weighs nothing; below 2^-126 a flush to +0, never a denormal).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "src/dispatch.h"
#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

// Max relative error on [-126, 0]: measured 6.0e-8 with FMA, 8.6e-8 without
// (the fit's own error is 5e-10; the rest is fp32 rounding in the polynomial
// and in x - floor(x)).
constexpr double kExp2Tolerance = 1e-7;

class FastExp2 : public ::testing::TestWithParam<uint64_t> {
 protected:
  std::vector<float> Exp2(const std::vector<float>& x) {
    const sdpa::KernelTable* kernels = sdpa::KernelsFor(GetParam());
    EXPECT_NE(kernels, nullptr);
    std::vector<float> y(x.size(), -1.0f);
    if (kernels != nullptr) kernels->exp2(x.data(), y.data(), x.size());
    return y;
  }
};

TEST_P(FastExp2, IntegersArePowersOfTwoExactly) {
  std::vector<float> x = {-0.0f};
  for (int k = 0; k <= 126; ++k) x.push_back(static_cast<float>(-k));
  const std::vector<float> y = Exp2(x);
  EXPECT_EQ(y[0], 1.0f) << "2^-0";
  for (int k = 0; k <= 126; ++k) {
    EXPECT_EQ(y[static_cast<size_t>(k) + 1], std::ldexp(1.0f, -k))
        << "2^-" << k;
  }
}

TEST_P(FastExp2, BelowTheNormalRangeIsPositiveZero) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {std::nextafter(-126.0f, -kInf),
                                -126.5f,
                                -127.0f,
                                -149.0f,
                                -150.5f,
                                -1000.0f,
                                -std::numeric_limits<float>::max(),
                                -kInf};
  const std::vector<float> y = Exp2(x);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(y[i], 0.0f) << "2^" << x[i];
    EXPECT_FALSE(std::signbit(y[i])) << "2^" << x[i];
  }
}

TEST_P(FastExp2, NaNStaysNaN) {
  const std::vector<float> x(7, std::numeric_limits<float>::quiet_NaN());
  for (float y : Exp2(x)) EXPECT_TRUE(std::isnan(y));
}

TEST_P(FastExp2, RelativeErrorOnTheNormalRange) {
  std::vector<float> x;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> whole(-126.0f, 0.0f);
  std::uniform_real_distribution<float> near_zero(-1.0f, 0.0f);
  for (int i = 0; i < 200001; ++i) x.push_back(whole(rng));
  for (int i = 0; i < 200001; ++i) x.push_back(near_zero(rng));
  // Either side of every integer, where the reduction changes its power.
  for (int k = 0; k <= 126; ++k) {
    const float v = static_cast<float>(-k);
    x.push_back(std::nextafter(v, -1000.0f));
    x.push_back(std::nextafter(v, 1.0f));
  }
  // Tiny magnitudes (2^x rounds to 1), the smallest normal and a denormal.
  for (float v : {-1e-10f, -std::numeric_limits<float>::min(), -1e-40f}) {
    x.push_back(v);
  }
  const std::vector<float> y = Exp2(x);
  double max_error = 0.0;
  float worst = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] > 0.0f || x[i] < -126.0f) continue;  // nextafter(0, 1), say
    const double exact = std::exp2(static_cast<double>(x[i]));
    const double error = std::fabs(y[i] - exact) / exact;
    if (!(error <= max_error)) {
      max_error = error;
      worst = x[i];
    }
  }
  EXPECT_LE(max_error, kExp2Tolerance) << "at x = " << worst;
  std::printf("[ %s ] max relative error %.3g at x = %.9g\n",
              sdpa_isa_name(GetParam()), max_error, worst);
}

INSTANTIATE_TEST_SUITE_P(EveryIsa, FastExp2,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

}  // namespace
}  // namespace sdpa_test
