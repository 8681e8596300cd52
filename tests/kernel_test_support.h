// Test support for the kernel suites: strided tensors with NaN padding, one
// context per (ISA, threads), and comparison against the double-precision
// reference. Everything goes through the public C API.
#ifndef SDPA_TESTS_KERNEL_TEST_SUPPORT_H_
#define SDPA_TESTS_KERNEL_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "sdpa/sdpa.h"

namespace sdpa_test {

// How a [B, H, S, D] tensor sits in memory.
enum class Layout {
  kBhsd,        // contiguous, head-major
  kBshd,        // contiguous, sequence-major (heads interleaved)
  kPadded,      // BHSD with every stride padded: gaps hold NaN
  kFusedSlice,  // one head-slice of a [B, S, 3, H, D] fused QKV-like buffer
  kReversed,    // sequence stored backwards (negative stride)
  kDimStrided,  // elements of a row 3 floats apart (no unit stride at all)
};
const char* LayoutName(Layout layout);

// A tensor view over its own buffer. Elements outside the view are NaN, so a
// kernel that reads them poisons its output.
//
// BF16/F16 tensors keep a float copy for tests to edit (At, FillNormal) and
// the 16-bit elements the library sees, refreshed from it by Sync().
class StridedTensor {
 public:
  StridedTensor(int64_t b, int64_t h, int64_t s, int64_t d, Layout layout,
                sdpa_dtype dtype = SDPA_DTYPE_F32);
  float& At(int64_t b, int64_t h, int64_t s, int64_t d);
  // The element as the library sees (or wrote) it, widened to float.
  float Get(int64_t b, int64_t h, int64_t s, int64_t d) const;
  void FillNormal(std::mt19937& rng, float stddev = 1.0f);
  // Rounds the float copy into the 16-bit elements (no-op for F32).
  void Sync();
  sdpa_tensor& view() { return view_; }
  const int64_t* shape() const { return view_.shape; }
  // True if every element outside the view is still NaN-patterned.
  bool PaddingIntact() const;

 private:
  int64_t Offset(int64_t b, int64_t h, int64_t s, int64_t d) const;
  std::vector<float> buffer_;
  std::vector<uint16_t> halves_;  // BF16/F16 elements, same layout
  std::vector<bool> in_view_;
  int64_t origin_ = 0;
  sdpa_tensor view_{};
};

enum class MaskKind { kNone, kAdditive, kBool };

struct Case {
  int64_t batch = 1, q_heads = 1, kv_heads = 1, q_len = 1, kv_len = 1;
  int64_t head_dim = 8, value_dim = 8;
  sdpa_causal causal = SDPA_CAUSAL_NONE;
  int64_t window_left = -1, window_right = -1;
  float scale = 0.0f;
  MaskKind mask = MaskKind::kNone;
  // Mask broadcasting: which of [B, H, Tq] have size 1.
  bool mask_batch_1 = false, mask_heads_1 = false, mask_rows_1 = false;
  Layout layout = Layout::kBhsd;
  sdpa_dtype q_dtype = SDPA_DTYPE_F32, k_dtype = SDPA_DTYPE_F32,
             v_dtype = SDPA_DTYPE_F32, out_dtype = SDPA_DTYPE_F32;
  bool want_lse = true;
  uint32_t flags = 0;  // sdpa_attention_args.flags
  uint32_t seed = 1;
  std::string Name() const;
};

struct Result {
  sdpa_status status = SDPA_OK;
  std::string error;
  std::vector<float> out;  // [B, Hq, Tq, Dv] contiguous copy
  std::vector<float> lse;  // [B, Hq, Tq]
  double max_out_error = 0;
  double max_lse_error = 0;
  double out_scale = 1;  // max |V|: outputs are convex combinations of V
  bool padding_intact = true;
};

// Inputs of a case, built once and reusable across ISAs/threads.
class Inputs {
 public:
  explicit Inputs(const Case& c);
  // Hooks for tests that plant special values before running.
  StridedTensor& q() { return *q_; }
  StridedTensor& k() { return *k_; }
  StridedTensor& v() { return *v_; }
  std::vector<float>& mask_values() { return mask_values_; }
  std::vector<uint8_t>& mask_bits() { return mask_bits_; }
  // Runs the library on a context (NULL: default) and compares with the
  // reference.
  Result Run(sdpa_context* context);

 private:
  Case case_;
  std::unique_ptr<StridedTensor> q_, k_, v_;
  std::vector<float> mask_values_;
  std::vector<uint8_t> mask_bits_;
  sdpa_tensor mask_view_{};
};

// A context per (isa, threads), created on first use and kept for the whole
// test binary (creating one costs far more than a small attention call).
sdpa_context* ContextFor(uint64_t isa, int32_t threads);

// Every ISA sdpa_available_isas() reports, for parameterised tests.
std::vector<uint64_t> AvailableIsas();

// Names parameterised tests after the ISA ("AVX3", "SCALAR", ...).
inline std::string IsaParamName(
    const ::testing::TestParamInfo<uint64_t>& info) {
  return sdpa_isa_name(info.param);
}

// Tolerances, relative to the output scale (max |V|) and to max(1, |lse|):
// fp32 accumulation over up to a few thousand keys stays well inside these.
// A BF16/F16 output may differ by its rounding on top: the unit roundoff,
// 2^-8 (BF16, 8 significant bits) or 2^-11 (F16, 11 bits) of the value. (Inputs
// need no allowance: the reference reads the same rounded elements.)
constexpr double kOutTolerance = 1e-5;
// With SDPA_FLAG_BF16_WEIGHTS where it applies (BF16 V on AVX3_ZEN4): each
// weight rounded to BF16 moves by at most 2^-8 of itself, so an output by
// at most 2^-8 of max |V| (sdpa.h), on top of the f32 tolerance.
constexpr double kBf16WeightsTolerance = 0x1p-8 + kOutTolerance;
constexpr double kLseTolerance = 1e-5;

}  // namespace sdpa_test

#endif  // SDPA_TESTS_KERNEL_TEST_SUPPORT_H_
