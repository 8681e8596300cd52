#include "tests/kernel_test_support.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <sstream>

#include "src/elem_type.h"
#include "src/reference.h"

namespace sdpa_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kBhsd:
      return "bhsd";
    case Layout::kBshd:
      return "bshd";
    case Layout::kPadded:
      return "padded";
    case Layout::kFusedSlice:
      return "fused";
    case Layout::kReversed:
      return "reversed";
    case Layout::kDimStrided:
      return "dimstrided";
  }
  return "?";
}

StridedTensor::StridedTensor(int64_t b, int64_t h, int64_t s, int64_t d,
                             Layout layout, sdpa_dtype dtype) {
  int64_t* st = view_.strides;
  int64_t size = 0;
  switch (layout) {
    case Layout::kBhsd:
      st[3] = 1, st[2] = d, st[1] = s * d, st[0] = h * s * d;
      size = b * h * s * d;
      break;
    case Layout::kBshd:
      st[3] = 1, st[1] = d, st[2] = h * d, st[0] = s * h * d;
      size = b * h * s * d;
      break;
    case Layout::kPadded:
      st[3] = 1, st[2] = d + 3, st[1] = s * (d + 3) + 5;
      st[0] = h * st[1] + 7;
      size = b * st[0] + 11;
      origin_ = 2;
      break;
    case Layout::kFusedSlice:  // slot 1 of [B, S, 3, H, D]
      st[3] = 1, st[1] = d, st[2] = 3 * h * d, st[0] = s * 3 * h * d;
      size = b * s * 3 * h * d;
      origin_ = h * d;
      break;
    case Layout::kReversed:
      st[3] = 1, st[2] = -d, st[1] = s * d, st[0] = h * s * d;
      size = b * h * s * d;
      origin_ = (s - 1) * d;
      break;
    case Layout::kDimStrided:
      st[3] = 3, st[2] = 3 * d, st[1] = 3 * s * d, st[0] = 3 * h * s * d;
      size = 3 * b * h * s * d;
      break;
  }
  buffer_.assign(static_cast<size_t>(size), kNaN);
  in_view_.assign(buffer_.size(), false);
  view_.data = buffer_.data() + origin_;
  view_.dtype = dtype;
  if (dtype != SDPA_DTYPE_F32) {
    halves_.resize(buffer_.size());
    view_.data = halves_.data() + origin_;
  }
  view_.shape[0] = b, view_.shape[1] = h, view_.shape[2] = s,
  view_.shape[3] = d;
  for (int64_t i0 = 0; i0 < b; ++i0)
    for (int64_t i1 = 0; i1 < h; ++i1)
      for (int64_t i2 = 0; i2 < s; ++i2)
        for (int64_t i3 = 0; i3 < d; ++i3)
          in_view_[static_cast<size_t>(origin_ + i0 * st[0] + i1 * st[1] +
                                       i2 * st[2] + i3 * st[3])] = true;
}

int64_t StridedTensor::Offset(int64_t b, int64_t h, int64_t s,
                              int64_t d) const {
  const int64_t* st = view_.strides;
  return origin_ + b * st[0] + h * st[1] + s * st[2] + d * st[3];
}

float& StridedTensor::At(int64_t b, int64_t h, int64_t s, int64_t d) {
  return buffer_[static_cast<size_t>(Offset(b, h, s, d))];
}

float StridedTensor::Get(int64_t b, int64_t h, int64_t s, int64_t d) const {
  const size_t i = static_cast<size_t>(Offset(b, h, s, d));
  switch (view_.dtype) {
    case SDPA_DTYPE_BF16:
      return sdpa::F32FromBF16Bits(halves_[i]);
    case SDPA_DTYPE_F16:
      return sdpa::F32FromF16Bits(halves_[i]);
    default:
      return buffer_[i];
  }
}

void StridedTensor::FillNormal(std::mt19937& rng, float stddev) {
  std::normal_distribution<float> normal(0.0f, stddev);
  for (size_t i = 0; i < buffer_.size(); ++i) {
    if (in_view_[i]) buffer_[i] = normal(rng);
  }
  Sync();
}

void StridedTensor::Sync() {
  for (size_t i = 0; i < halves_.size(); ++i) {
    halves_[i] = view_.dtype == SDPA_DTYPE_BF16
                     ? sdpa::BF16BitsFromF32(buffer_[i])
                     : sdpa::F16BitsFromF32(buffer_[i]);
  }
}

bool StridedTensor::PaddingIntact() const {
  for (size_t i = 0; i < buffer_.size(); ++i) {
    if (in_view_[i]) continue;
    const float x =
        view_.dtype == SDPA_DTYPE_BF16  ? sdpa::F32FromBF16Bits(halves_[i])
        : view_.dtype == SDPA_DTYPE_F16 ? sdpa::F32FromF16Bits(halves_[i])
                                        : buffer_[i];
    if (!std::isnan(x)) return false;
  }
  return true;
}

std::string Case::Name() const {
  std::ostringstream s;
  s << "B" << batch << "_Hq" << q_heads << "_Hkv" << kv_heads << "_Tq" << q_len
    << "_Tk" << kv_len << "_D" << head_dim << "_Dv" << value_dim << "_causal"
    << causal << "_w" << window_left << "," << window_right << "_mask"
    << static_cast<int>(mask) << (mask_batch_1 ? "b" : "")
    << (mask_heads_1 ? "h" : "") << (mask_rows_1 ? "r" : "") << "_"
    << LayoutName(layout)
    << (flags != 0 ? "_flags" + std::to_string(flags) : "");
  return s.str();
}

Inputs::Inputs(const Case& c) : case_(c) {
  std::mt19937 rng(c.seed);
  q_ = std::make_unique<StridedTensor>(c.batch, c.q_heads, c.q_len, c.head_dim,
                                       c.layout, c.q_dtype);
  k_ = std::make_unique<StridedTensor>(c.batch, c.kv_heads, c.kv_len,
                                       c.head_dim, c.layout, c.k_dtype);
  v_ = std::make_unique<StridedTensor>(c.batch, c.kv_heads, c.kv_len,
                                       c.value_dim, c.layout, c.v_dtype);
  q_->FillNormal(rng);
  k_->FillNormal(rng);
  v_->FillNormal(rng);
  if (c.mask == MaskKind::kNone) return;
  const int64_t mb = c.mask_batch_1 ? 1 : c.batch;
  const int64_t mh = c.mask_heads_1 ? 1 : c.q_heads;
  const int64_t mr = c.mask_rows_1 ? 1 : c.q_len;
  const int64_t count = mb * mh * mr * c.kv_len;
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::normal_distribution<float> normal;
  mask_values_.resize(static_cast<size_t>(count));
  mask_bits_.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t row = i / c.kv_len;
    // Every 7th mask row hides every key (a fully masked row); elsewhere
    // about one key in five is hidden.
    const bool hide_row = mr > 1 && row % 7 == 3;
    const bool hide = hide_row || uniform(rng) < 0.2f;
    mask_bits_[static_cast<size_t>(i)] = hide ? 0 : 1;
    mask_values_[static_cast<size_t>(i)] =
        hide ? -std::numeric_limits<float>::infinity() : normal(rng);
  }
  mask_view_.dtype =
      c.mask == MaskKind::kBool ? SDPA_DTYPE_BOOL : SDPA_DTYPE_F32;
  mask_view_.shape[0] = mb, mask_view_.shape[1] = mh, mask_view_.shape[2] = mr,
  mask_view_.shape[3] = c.kv_len;
  mask_view_.strides[3] = 1;
  mask_view_.strides[2] = c.kv_len;
  mask_view_.strides[1] = mr * c.kv_len;
  mask_view_.strides[0] = mh * mr * c.kv_len;
}

Result Inputs::Run(sdpa_context* context) {
  const Case& c = case_;
  // Inputs edited through At() since they were filled.
  q_->Sync();
  k_->Sync();
  v_->Sync();
  StridedTensor out(c.batch, c.q_heads, c.q_len, c.value_dim, c.layout,
                    c.out_dtype);
  out.Sync();  // NaN everywhere, in the output's own element type
  StridedTensor lse(c.batch, c.q_heads, c.q_len, 1, Layout::kPadded);
  if (c.mask == MaskKind::kBool) {
    mask_view_.data = mask_bits_.data();
  } else if (c.mask == MaskKind::kAdditive) {
    mask_view_.data = mask_values_.data();
  }
  sdpa_attention_args args{};
  args.struct_size = sizeof(args);
  args.q = &q_->view();
  args.k = &k_->view();
  args.v = &v_->view();
  args.out = &out.view();
  args.mask = c.mask == MaskKind::kNone ? nullptr : &mask_view_;
  args.lse = c.want_lse ? &lse.view() : nullptr;
  args.scale = c.scale;
  args.causal = c.causal;
  args.window_left = c.window_left;
  args.window_right = c.window_right;
  args.flags = c.flags;

  Result result;
  result.status = sdpa_attention(context, &args);
  result.error = sdpa_last_error();
  if (result.status != SDPA_OK) return result;

  std::vector<double> ref_out, ref_lse;
  sdpa::ReferenceAttention(args, &ref_out, &ref_lse);

  double v_max = 0;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.kv_heads; ++h)
      for (int64_t j = 0; j < c.kv_len; ++j)
        for (int64_t e = 0; e < c.value_dim; ++e) {
          const float x = v_->Get(b, h, j, e);
          if (std::isfinite(x)) v_max = std::max(v_max, std::fabs(double(x)));
        }
  result.out_scale = std::max(v_max, 1e-30);

  // NaN must match NaN, infinities must match exactly, finite values within
  // tolerance; any mismatch of kind counts as an infinite error.
  const double out_rounding = c.out_dtype == SDPA_DTYPE_BF16  ? 0x1p-8
                              : c.out_dtype == SDPA_DTYPE_F16 ? 0x1p-11
                                                              : 0.0;
  auto error = [](double got, double ref, double scale, double rounding) {
    if (std::isnan(ref) || std::isnan(got)) {
      return std::isnan(ref) && std::isnan(got)
                 ? 0.0
                 : std::numeric_limits<double>::infinity();
    }
    if (std::isinf(ref) || std::isinf(got)) {
      return got == ref ? 0.0 : std::numeric_limits<double>::infinity();
    }
    return std::max(0.0, std::fabs(got - ref) - rounding * std::fabs(ref)) /
           scale;
  };
  size_t i = 0;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.q_heads; ++h)
      for (int64_t s = 0; s < c.q_len; ++s) {
        for (int64_t e = 0; e < c.value_dim; ++e, ++i) {
          const float got = out.Get(b, h, s, e);
          result.out.push_back(got);
          result.max_out_error =
              std::max(result.max_out_error,
                       error(got, ref_out[i], result.out_scale, out_rounding));
        }
        const size_t row =
            static_cast<size_t>((b * c.q_heads + h) * c.q_len + s);
        if (c.want_lse) {
          const float got = lse.At(b, h, s, 0);
          result.lse.push_back(got);
          result.max_lse_error =
              std::max(result.max_lse_error,
                       error(got, ref_lse[row],
                             std::max(1.0, std::fabs(ref_lse[row])), 0.0));
        }
      }
  result.padding_intact = out.PaddingIntact() && lse.PaddingIntact();
  return result;
}

namespace {

// Owns the cached contexts and destroys them at exit, so leak checkers see
// every allocation released.
class ContextCache {
 public:
  ~ContextCache() {
    for (auto& entry : contexts_) sdpa_context_destroy(entry.second);
  }
  sdpa_context* Get(uint64_t isa, int32_t threads) {
    std::lock_guard<std::mutex> lock(mutex_);
    sdpa_context*& context = contexts_[{isa, threads}];
    if (context == nullptr) {
      sdpa_context_options options{};
      options.struct_size = sizeof(options);
      options.num_threads = threads;
      options.isa = isa;
      if (sdpa_context_create(&options, &context) != SDPA_OK) {
        context = nullptr;
      }
    }
    return context;
  }

 private:
  std::mutex mutex_;
  std::map<std::pair<uint64_t, int32_t>, sdpa_context*> contexts_;
};

}  // namespace

sdpa_context* ContextFor(uint64_t isa, int32_t threads) {
  static ContextCache cache;
  return cache.Get(isa, threads);
}

std::vector<uint64_t> AvailableIsas() {
  std::vector<uint64_t> isas;
  const uint64_t available = sdpa_available_isas();
  for (int bit = 0; bit < 64; ++bit) {
    const uint64_t isa = uint64_t{1} << bit;
    if (available & isa) isas.push_back(isa);
  }
  return isas;
}

}  // namespace sdpa_test
