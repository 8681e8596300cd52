// Small helpers for tests of the public API: strided tensors that own their
// memory (padding poisoned with NaN, so reading it shows), sentinel checks
// that prove a call wrote nothing, and comparison against the
// double-precision reference. Header-only; namespace sdpa_testing.
#ifndef SDPA_TESTS_TEST_UTIL_H_
#define SDPA_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "sdpa/sdpa.h"
#include "src/reference.h"

namespace sdpa_testing {

using Shape = std::array<int64_t, 4>;

// How a logical [batch, heads, seq, dim] tensor sits in memory.
enum class Layout {
  kBhsd,  // head-major: [b][h][s][d]
  kBshd,  // sequence-major, heads interleaved: [b][s][h][d]
};

// A 4-D tensor of float (F32) or uint8_t (BOOL mask) in a buffer it owns.
// Every innermost row is followed by `row_padding` elements that are not
// part of the view; they and any other gap hold `PaddingValue()`.
template <typename T>
class TestTensor {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, uint8_t>,
                "F32 data or BOOL masks");

 public:
  // NaN for float: a kernel that reads padding poisons its result. 0xA5 for
  // masks: neither 0 nor 1, so a stray read is at least unusual.
  static T PaddingValue() {
    if constexpr (std::is_same_v<T, float>) {
      return std::numeric_limits<float>::quiet_NaN();
    } else {
      return 0xA5;
    }
  }

  TestTensor(Shape shape, Layout layout = Layout::kBhsd,
             int64_t row_padding = 0) {
    const int64_t row = shape[3] + row_padding;
    int64_t strides[4];
    if (layout == Layout::kBhsd) {
      strides[3] = 1;
      strides[2] = row;
      strides[1] = shape[2] * row;
      strides[0] = shape[1] * shape[2] * row;
    } else {
      strides[3] = 1;
      strides[1] = row;
      strides[2] = shape[1] * row;
      strides[0] = shape[2] * shape[1] * row;
    }
    buffer_.assign(static_cast<size_t>(shape[0] * strides[0]), PaddingValue());
    view_.data = buffer_.data();
    view_.dtype = std::is_same_v<T, float> ? SDPA_DTYPE_F32 : SDPA_DTYPE_BOOL;
    for (int d = 0; d < 4; ++d) {
      view_.shape[d] = shape[d];
      view_.strides[d] = strides[d];
    }
  }

  // Copies would leave view_.data pointing into the source.
  TestTensor(const TestTensor&) = delete;
  TestTensor& operator=(const TestTensor&) = delete;

  sdpa_tensor* view() { return &view_; }
  const sdpa_tensor& view() const { return view_; }
  Shape shape() const {
    return {view_.shape[0], view_.shape[1], view_.shape[2], view_.shape[3]};
  }

  // Element of the view; only valid while view() still describes the buffer.
  T& at(int64_t b, int64_t h, int64_t s, int64_t d) {
    return static_cast<T*>(
        view_.data)[b * view_.strides[0] + h * view_.strides[1] +
                    s * view_.strides[2] + d * view_.strides[3]];
  }

  template <typename Fn>  // fn(b, h, s, d) -> T
  void Fill(Fn fn) {
    for (int64_t b = 0; b < view_.shape[0]; ++b)
      for (int64_t h = 0; h < view_.shape[1]; ++h)
        for (int64_t s = 0; s < view_.shape[2]; ++s)
          for (int64_t d = 0; d < view_.shape[3]; ++d)
            at(b, h, s, d) = fn(b, h, s, d);
  }

  // Elements uniform in [lo, hi) (F32 only).
  void FillUniform(std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    Fill([&](int64_t, int64_t, int64_t, int64_t) { return T(dist(rng)); });
  }

  // The whole buffer, padding included, for sentinel checks.
  std::vector<T>& buffer() { return buffer_; }
  void FillBuffer(T value) { buffer_.assign(buffer_.size(), value); }
  // True if every byte of the buffer still equals `value` (bitwise, so a
  // NaN sentinel works too).
  bool BufferIs(T value) const {
    for (const T& x : buffer_) {
      if (std::memcmp(&x, &value, sizeof(T)) != 0) return false;
    }
    return true;
  }

 private:
  std::vector<T> buffer_;
  sdpa_tensor view_{};
};

using F32Tensor = TestTensor<float>;
using BoolTensor = TestTensor<uint8_t>;

// Zero-initialised args with struct_size set and no mask, lse, causal or
// window (windows -1).
inline sdpa_attention_args MakeArgs(const sdpa_tensor* q, const sdpa_tensor* k,
                                    const sdpa_tensor* v, sdpa_tensor* out) {
  sdpa_attention_args args{};
  args.struct_size = sizeof(args);
  args.q = q;
  args.k = k;
  args.v = v;
  args.out = out;
  args.window_left = -1;
  args.window_right = -1;
  return args;
}

// Reads a float through a view's strides (size-1 dims broadcast).
inline float ReadF32(const sdpa_tensor& t, int64_t b, int64_t h, int64_t s,
                     int64_t d) {
  const int64_t index[4] = {b, h, s, d};
  int64_t offset = 0;
  for (int i = 0; i < 4; ++i) {
    if (t.shape[i] != 1) offset += index[i] * t.strides[i];
  }
  return static_cast<const float*>(t.data)[offset];
}

// |got - want| for comparing against the reference: 0 when both are NaN or
// the same infinity, +inf when only one is NaN/infinite.
inline double Deviation(double got, double want) {
  if (std::isnan(got) || std::isnan(want)) {
    return std::isnan(got) && std::isnan(want)
               ? 0.0
               : std::numeric_limits<double>::infinity();
  }
  if (std::isinf(got) || std::isinf(want)) {
    return got == want ? 0.0 : std::numeric_limits<double>::infinity();
  }
  return std::fabs(got - want);
}

// Checks args.out (and args.lse, when set) after a successful call against
// ReferenceAttention of the same args: every output element within
// `tolerance` absolutely, lse within `tolerance` * max(1, |lse|). Reports the
// first few mismatches with their indices.
inline ::testing::AssertionResult MatchesReference(
    const sdpa_attention_args& args, double tolerance) {
  std::vector<double> want_out, want_lse;
  sdpa::ReferenceAttention(args, &want_out, &want_lse);
  const sdpa_tensor& out = *args.out;
  std::ostringstream failures;
  int failed = 0;
  size_t i = 0;
  for (int64_t b = 0; b < out.shape[0]; ++b)
    for (int64_t h = 0; h < out.shape[1]; ++h)
      for (int64_t s = 0; s < out.shape[2]; ++s) {
        for (int64_t e = 0; e < out.shape[3]; ++e, ++i) {
          const double got = ReadF32(out, b, h, s, e);
          if (Deviation(got, want_out[i]) <= tolerance) continue;
          if (failed++ < 5) {
            failures << "\n  out[" << b << "," << h << "," << s << "," << e
                     << "] = " << got << ", reference " << want_out[i];
          }
        }
        if (args.lse == nullptr) continue;
        const double want = want_lse[static_cast<size_t>(
            (b * out.shape[1] + h) * out.shape[2] + s)];
        const double got = ReadF32(*args.lse, b, h, s, 0);
        if (Deviation(got, want) <= tolerance * std::fmax(1.0, std::fabs(want)))
          continue;
        if (failed++ < 5) {
          failures << "\n  lse[" << b << "," << h << "," << s << "] = " << got
                   << ", reference " << want;
        }
      }
  if (failed == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << failed << " values differ from the reference by more than "
         << tolerance << ":" << failures.str();
}

}  // namespace sdpa_testing

#endif  // SDPA_TESTS_TEST_UTIL_H_
