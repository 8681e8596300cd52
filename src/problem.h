// The normalised attention problem: what the C boundary (api.cc) hands to the
// scheduler once every argument has been validated. Kernels see only this.
#ifndef SDPA_SRC_PROBLEM_H_
#define SDPA_SRC_PROBLEM_H_

#include <cstdint>

#include "src/elem_type.h"

namespace sdpa {

enum class MaskKind { kNone, kAdditiveF32, kKeepBool };

// All strides in elements. A broadcast mask dimension has stride 0.
// Invariants guaranteed by the validator: all sizes >= 1, every addressed
// element lies inside memory the caller described, out/lse do not overlap the
// inputs, and every offset computation below fits in int64.
struct Problem {
  int64_t batch = 0;
  int64_t q_heads = 0;    // Hq
  int64_t kv_heads = 0;   // Hkv, q_heads % kv_heads == 0
  int64_t q_len = 0;      // Tq
  int64_t kv_len = 0;     // Tk
  int64_t head_dim = 0;   // Dk
  int64_t value_dim = 0;  // Dv

  // Elements of q/k/v/out are of the matching *_type.
  const void* q = nullptr;  // [B, Hq, Tq, Dk]
  int64_t q_strides[4] = {};
  ElemType q_type = ElemType::kF32;
  const void* k = nullptr;  // [B, Hkv, Tk, Dk]
  int64_t k_strides[4] = {};
  ElemType k_type = ElemType::kF32;
  const void* v = nullptr;  // [B, Hkv, Tk, Dv]
  int64_t v_strides[4] = {};
  ElemType v_type = ElemType::kF32;
  void* out = nullptr;  // [B, Hq, Tq, Dv]
  int64_t out_strides[4] = {};
  ElemType out_type = ElemType::kF32;

  MaskKind mask_kind = MaskKind::kNone;
  const void* mask = nullptr;  // float or uint8_t; logical [B, Hq, Tq, Tk]
  int64_t mask_strides[4] = {};

  float* lse = nullptr;  // NULL or [B, Hq, Tq]
  int64_t lse_strides[3] = {};

  float scale = 1.0f;  // already resolved (never 0 from the API default)
  // SDPA_FLAG_BF16_WEIGHTS: P·V may round the softmax weights to BF16.
  bool bf16_weights = false;

  // Visibility of key j to query i, with d(i) = i + diag_offset:
  //   (left < 0 || j >= d(i) - left) && (right < 0 || j <= d(i) + right).
  // Causal masking is folded in as right = 0 (or the smaller window).
  int64_t diag_offset = 0;
  int64_t left = -1;
  int64_t right = -1;
};

}  // namespace sdpa

#endif  // SDPA_SRC_PROBLEM_H_
