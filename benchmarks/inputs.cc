#include "benchmarks/inputs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

namespace sdpa_bench {
namespace {

constexpr size_t kAlignmentBytes = 64;

// Uniform in [-1, 1) from a xorshift64* stream: fast enough to fill a GiB of
// K/V in well under a second, and reproducible.
void FillUniform(float* data, size_t count, uint64_t seed) {
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < count; ++i) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    const uint64_t bits = state * 0x2545F4914F6CDD1Dull;
    // 24 random bits -> [0, 1) -> [-1, 1).
    data[i] = static_cast<float>(bits >> 40) * (2.0f / 16777216.0f) - 1.0f;
  }
}

// Rounds `values` to BF16 (to nearest even; they are finite) in place and
// returns a buffer of the BF16 elements.
FloatBuffer RoundToBf16(const FloatBuffer& values) {
  FloatBuffer halves((values.size() + 1) / 2);
  auto* out = reinterpret_cast<uint16_t*>(halves.data());
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values.data()[i], sizeof(bits));
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    out[i] = static_cast<uint16_t>(bits >> 16);
    bits = static_cast<uint32_t>(out[i]) << 16;
    std::memcpy(&values.data()[i], &bits, sizeof(bits));
  }
  return halves;
}

sdpa_tensor Bhsd(void* data, sdpa_dtype dtype, int64_t b, int64_t h, int64_t s,
                 int64_t d) {
  sdpa_tensor t{};
  t.data = data;
  t.dtype = dtype;
  t.shape[0] = b;
  t.shape[1] = h;
  t.shape[2] = s;
  t.shape[3] = d;
  t.strides[0] = h * s * d;
  t.strides[1] = s * d;
  t.strides[2] = d;
  t.strides[3] = 1;
  return t;
}

bool SameDimensions(const Shape& a, const Shape& b) {
  return a.dtype == b.dtype && a.batch == b.batch && a.q_heads == b.q_heads &&
         a.kv_heads == b.kv_heads && a.q_len == b.q_len &&
         a.kv_len == b.kv_len && a.head_dim == b.head_dim &&
         a.value_dim == b.value_dim;
}

}  // namespace

FloatBuffer::FloatBuffer(size_t count) : count_(count) {
  const size_t bytes =
      (std::max<size_t>(count, 1) * sizeof(float) + kAlignmentBytes - 1) /
      kAlignmentBytes * kAlignmentBytes;
  data_.reset(static_cast<float*>(std::aligned_alloc(kAlignmentBytes, bytes)));
  if (data_ == nullptr) throw std::bad_alloc();
}

void FloatBuffer::Free::operator()(float* p) const { std::free(p); }

Inputs* InputsFor(const Shape& shape) {
  static std::unique_ptr<Inputs> current;
  if (current != nullptr && SameDimensions(current->shape, shape)) {
    current->shape = shape;  // causal rule and name may differ
    current->args.causal = shape.causal;
    current->args.flags = shape.flags;
    return current.get();
  }
  current.reset();  // free the previous shape's buffers before allocating
  auto inputs = std::make_unique<Inputs>();
  const Shape& s = shape;
  inputs->shape = s;
  inputs->q = FloatBuffer(s.batch * s.q_heads * s.q_len * s.head_dim);
  inputs->k = FloatBuffer(s.batch * s.kv_heads * s.kv_len * s.head_dim);
  inputs->v = FloatBuffer(s.batch * s.kv_heads * s.kv_len * s.value_dim);
  inputs->out = FloatBuffer(s.batch * s.q_heads * s.q_len * s.value_dim);
  FillUniform(inputs->q.data(), inputs->q.size(), 1);
  FillUniform(inputs->k.data(), inputs->k.size(), 2);
  FillUniform(inputs->v.data(), inputs->v.size(), 3);
  PoisonOutput(inputs.get());
  float *q = inputs->q.data(), *k = inputs->k.data(), *v = inputs->v.data();
  if (s.dtype == SDPA_DTYPE_BF16) {
    inputs->q16 = RoundToBf16(inputs->q);
    inputs->k16 = RoundToBf16(inputs->k);
    inputs->v16 = RoundToBf16(inputs->v);
    q = inputs->q16.data(), k = inputs->k16.data(), v = inputs->v16.data();
  }
  inputs->q_tensor = Bhsd(q, s.dtype, s.batch, s.q_heads, s.q_len, s.head_dim);
  inputs->k_tensor =
      Bhsd(k, s.dtype, s.batch, s.kv_heads, s.kv_len, s.head_dim);
  inputs->v_tensor =
      Bhsd(v, s.dtype, s.batch, s.kv_heads, s.kv_len, s.value_dim);
  inputs->out_tensor = Bhsd(inputs->out.data(), SDPA_DTYPE_F32, s.batch,
                            s.q_heads, s.q_len, s.value_dim);
  sdpa_attention_args& args = inputs->args;
  args = sdpa_attention_args{};
  args.struct_size = sizeof(sdpa_attention_args);
  args.q = &inputs->q_tensor;
  args.k = &inputs->k_tensor;
  args.v = &inputs->v_tensor;
  args.out = &inputs->out_tensor;
  args.mask = nullptr;
  args.lse = nullptr;
  args.scale = 0.0f;  // 1/sqrt(Dk)
  args.causal = s.causal;
  args.window_left = -1;
  args.window_right = -1;
  args.flags = s.flags;
  current = std::move(inputs);
  return current.get();
}

void PoisonOutput(Inputs* inputs) {
  std::fill(inputs->out.data(), inputs->out.data() + inputs->out.size(),
            std::numeric_limits<float>::quiet_NaN());
}

std::string CheckSampledRows(const Inputs& inputs, double tolerance) {
  const Shape& s = inputs.shape;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  const int64_t group = s.q_heads / s.kv_heads;
  std::vector<double> scores(s.kv_len);
  std::vector<double> row(s.value_dim);
  for (int64_t head : {int64_t{0}, s.q_heads - 1}) {
    for (int64_t query : {int64_t{0}, s.q_len / 2, s.q_len - 1}) {
      const int64_t kv_head = head / group;
      const float* q = inputs.q.data() + (head * s.q_len + query) * s.head_dim;
      const float* k = inputs.k.data() + kv_head * s.kv_len * s.head_dim;
      const float* v = inputs.v.data() + kv_head * s.kv_len * s.value_dim;
      const float* out =
          inputs.out.data() + (head * s.q_len + query) * s.value_dim;
      const int64_t visible = VisibleKeys(s, query);
      double max_score = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < visible; ++j) {
        double dot = 0.0;
        for (int64_t d = 0; d < s.head_dim; ++d) {
          dot += static_cast<double>(q[d]) * k[j * s.head_dim + d];
        }
        scores[j] = dot * scale;
        max_score = std::max(max_score, scores[j]);
      }
      double sum = 0.0;
      std::fill(row.begin(), row.end(), 0.0);
      for (int64_t j = 0; j < visible; ++j) {
        const double p = std::exp(scores[j] - max_score);
        sum += p;
        for (int64_t d = 0; d < s.value_dim; ++d) {
          row[d] += p * v[j * s.value_dim + d];
        }
      }
      for (int64_t d = 0; d < s.value_dim; ++d) {
        const double expected = sum > 0.0 ? row[d] / sum : 0.0;
        // Written so that NaN fails too.
        if (!(std::fabs(out[d] - expected) <= tolerance)) {
          char message[160];
          std::snprintf(message, sizeof(message),
                        "wrong output at head %lld query %lld dim %lld: "
                        "%.7g, expected %.7g",
                        static_cast<long long>(head),
                        static_cast<long long>(query),
                        static_cast<long long>(d), out[d], expected);
          return message;
        }
      }
    }
  }
  return "";
}

}  // namespace sdpa_bench
