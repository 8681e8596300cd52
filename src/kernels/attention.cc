// Per-target attention kernel (placeholder: straightforward per-row code).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/attention.cc"
#include "src/kernels/attention.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <limits>
#include <vector>

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void Attend(const Problem& p, const Task& t) {
  const int64_t group = p.q_heads / p.kv_heads;
  std::vector<float> s(static_cast<size_t>(p.kv_len));
  for (int64_t hh = 0; hh < group; ++hh) {
    const int64_t h = t.kv_head * group + hh;
    for (int64_t i = t.q_begin; i < t.q_end; ++i) {
      const float* q = p.q + t.batch * p.q_strides[0] + h * p.q_strides[1] +
                       i * p.q_strides[2];
      float m = -std::numeric_limits<float>::infinity();
      const int64_t d = i + p.diag_offset;
      for (int64_t j = t.kv_begin; j < t.kv_end; ++j) {
        bool visible = (p.left < 0 || j >= d - p.left) &&
                       (p.right < 0 || j <= d + p.right);
        float x = -std::numeric_limits<float>::infinity();
        if (visible) {
          const float* k = p.k + t.batch * p.k_strides[0] +
                           t.kv_head * p.k_strides[1] + j * p.k_strides[2];
          float acc = 0;
          for (int64_t e = 0; e < p.head_dim; ++e) {
            acc += q[e * p.q_strides[3]] * k[e * p.k_strides[3]];
          }
          x = acc * p.scale;
          const int64_t mo = t.batch * p.mask_strides[0] +
                             h * p.mask_strides[1] + i * p.mask_strides[2] +
                             j * p.mask_strides[3];
          if (p.mask_kind == MaskKind::kAdditiveF32) {
            x += static_cast<const float*>(p.mask)[mo];
          } else if (p.mask_kind == MaskKind::kKeepBool) {
            if (!static_cast<const uint8_t*>(p.mask)[mo]) {
              x = -std::numeric_limits<float>::infinity();
            }
          }
        }
        s[j] = x;
        if (x > m) m = x;
      }
      float* o = p.out + t.batch * p.out_strides[0] + h * p.out_strides[1] +
                 i * p.out_strides[2];
      float l = 0;
      std::vector<float> acc(static_cast<size_t>(p.value_dim), 0.0f);
      if (m != -std::numeric_limits<float>::infinity()) {
        for (int64_t j = t.kv_begin; j < t.kv_end; ++j) {
          const float e = std::exp(s[j] - m);
          l += e;
          const float* v = p.v + t.batch * p.v_strides[0] +
                           t.kv_head * p.v_strides[1] + j * p.v_strides[2];
          for (int64_t e2 = 0; e2 < p.value_dim; ++e2) {
            acc[e2] += e * v[e2 * p.v_strides[3]];
          }
        }
      }
      for (int64_t e2 = 0; e2 < p.value_dim; ++e2) {
        o[e2 * p.out_strides[3]] = l > 0 ? acc[e2] / l : 0.0f;
      }
      if (p.lse) {
        p.lse[t.batch * p.lse_strides[0] + h * p.lse_strides[1] +
              i * p.lse_strides[2]] =
            l > 0 ? m + std::log(l) : -std::numeric_limits<float>::infinity();
      }
    }
  }
}

const KernelTable* GetKernelTable() {
  static const KernelTable table = {
      &Attend, static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()))};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sdpa {

HWY_EXPORT(GetKernelTable);

// The dispatch table of HWY_EXPORT holds one entry per Highway target (nullptr
// where not compiled); this finds a given target's entry the way Highway's own
// ChosenTarget does, so each context can run its own ISA.
const KernelTable* KernelsForHwyTarget(int64_t hwy_target) {
  size_t index;
  if (hwy_target == HWY_SCALAR || hwy_target == HWY_EMU128) {
    index = HWY_MAX_DYNAMIC_TARGETS + 1;
  } else {
    const int64_t bits = HWY_CHOSEN_TARGET_SHIFT(hwy_target);
    if (bits == 0) return nullptr;
    index = hwy::Num0BitsBelowLS1Bit_Nonzero64(static_cast<uint64_t>(bits));
  }
  const auto fn = HWY_DISPATCH_TABLE(GetKernelTable)[index];
  return fn != nullptr ? fn() : nullptr;
}

}  // namespace sdpa
#endif
