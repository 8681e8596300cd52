// Straight from the definition in sdpa.h, one query row at a time, in double.
// Deliberately shares no code with the validator or the kernels, so that a
// mistake there cannot hide in the oracle too.
#include "src/reference.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace sdpa {
namespace {

// A binary16 value, decoded arithmetically (independently of the kernels'
// bit manipulation).
double DecodeF16(uint16_t bits) {
  const int sign = (bits >> 15) ? -1 : 1;
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  if (exponent == 31) {
    return mantissa ? std::numeric_limits<double>::quiet_NaN()
                    : sign * std::numeric_limits<double>::infinity();
  }
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

// Element (b, h, s, d) of an F32, BF16 or F16 view; a dimension of size 1
// broadcasts whatever its stride says.
double LoadElement(const sdpa_tensor& t, int64_t b, int64_t h, int64_t s,
                   int64_t d) {
  const int64_t index[4] = {b, h, s, d};
  int64_t offset = 0;
  for (int i = 0; i < 4; ++i) {
    if (t.shape[i] != 1) offset += index[i] * t.strides[i];
  }
  if (t.dtype == SDPA_DTYPE_BF16) {
    // bfloat16 is the top half of a binary32.
    const uint32_t bits =
        static_cast<uint32_t>(static_cast<const uint16_t*>(t.data)[offset])
        << 16;
    float x;
    std::memcpy(&x, &bits, sizeof(x));
    return x;
  }
  if (t.dtype == SDPA_DTYPE_F16) {
    return DecodeF16(static_cast<const uint16_t*>(t.data)[offset]);
  }
  return static_cast<const float*>(t.data)[offset];
}

// Mask value at (b, h, i, j) as an additive term: F32 as is, BOOL 0 / -inf.
double MaskTerm(const sdpa_tensor& mask, int64_t b, int64_t h, int64_t i,
                int64_t j) {
  if (mask.dtype == SDPA_DTYPE_F32) return LoadElement(mask, b, h, i, j);
  const int64_t index[4] = {b, h, i, j};
  int64_t offset = 0;
  for (int d = 0; d < 4; ++d) {
    if (mask.shape[d] != 1) offset += index[d] * mask.strides[d];
  }
  const bool keep = static_cast<const uint8_t*>(mask.data)[offset] != 0;
  return keep ? 0.0 : -std::numeric_limits<double>::infinity();
}

// The causal and window rules of sdpa_attention_args for query i, key j.
bool PositionVisible(const sdpa_attention_args& args, int64_t q_len,
                     int64_t kv_len, int64_t i, int64_t j) {
  const int64_t diagonal =
      args.causal == SDPA_CAUSAL_TOP_LEFT ? i : i + kv_len - q_len;
  if (args.causal != SDPA_CAUSAL_NONE && j > diagonal) return false;
  // Compared as j - d(i) so that extreme window values cannot overflow.
  const int64_t distance = j - diagonal;
  if (args.window_left >= 0 && distance < 0 && -distance > args.window_left) {
    return false;
  }
  if (args.window_right >= 0 && distance > args.window_right) return false;
  return true;
}

}  // namespace

void ReferenceAttention(const sdpa_attention_args& args,
                        std::vector<double>* out, std::vector<double>* lse) {
  const sdpa_tensor& q = *args.q;
  const sdpa_tensor& k = *args.k;
  const sdpa_tensor& v = *args.v;
  const int64_t batch = q.shape[0], q_heads = q.shape[1], q_len = q.shape[2];
  const int64_t head_dim = q.shape[3];
  const int64_t kv_heads = k.shape[1], kv_len = k.shape[2];
  const int64_t value_dim = v.shape[3];
  const int64_t group = q_heads / kv_heads;  // query heads per kv head
  const double scale = args.scale != 0.0f
                           ? static_cast<double>(args.scale)
                           : 1.0 / std::sqrt(static_cast<double>(head_dim));
  const double kMinusInf = -std::numeric_limits<double>::infinity();

  const int64_t rows = batch * q_heads * q_len;
  out->assign(static_cast<size_t>(rows * value_dim), 0.0);
  if (lse != nullptr) lse->assign(static_cast<size_t>(rows), kMinusInf);

  std::vector<double> scores(static_cast<size_t>(kv_len));
  std::vector<bool> visible(static_cast<size_t>(kv_len));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < q_heads; ++h) {
      const int64_t kv_head = h / group;
      for (int64_t i = 0; i < q_len; ++i) {
        // Scaled scores of the visible keys. A key hidden by the causal or
        // window rule, or removed by the mask (BOOL false, F32 -inf), takes
        // no part at all: not even NaN in its K or V row reaches the output.
        bool any_visible = false;
        double row_max = kMinusInf;
        for (int64_t j = 0; j < kv_len; ++j) {
          const size_t jj = static_cast<size_t>(j);
          visible[jj] = false;
          if (!PositionVisible(args, q_len, kv_len, i, j)) continue;
          const double term =
              args.mask != nullptr ? MaskTerm(*args.mask, b, h, i, j) : 0.0;
          if (term == kMinusInf) continue;
          double dot = 0;
          for (int64_t d = 0; d < head_dim; ++d) {
            dot +=
                LoadElement(q, b, h, i, d) * LoadElement(k, b, kv_head, j, d);
          }
          scores[jj] = dot * scale + term;
          visible[jj] = true;
          any_visible = true;
          // NaN scores do not enter the max; they make the row NaN below.
          if (scores[jj] > row_max) row_max = scores[jj];
        }
        const int64_t row = (b * q_heads + h) * q_len + i;
        double* out_row = out->data() + row * value_dim;
        if (!any_visible) continue;  // output 0, lse -inf (already there)

        double denominator = 0;
        for (int64_t j = 0; j < kv_len; ++j) {
          const size_t jj = static_cast<size_t>(j);
          if (!visible[jj]) continue;
          const double weight = std::exp(scores[jj] - row_max);
          denominator += weight;
          for (int64_t e = 0; e < value_dim; ++e) {
            out_row[e] += weight * LoadElement(v, b, kv_head, j, e);
          }
        }
        for (int64_t e = 0; e < value_dim; ++e) out_row[e] /= denominator;
        if (lse != nullptr) {
          (*lse)[static_cast<size_t>(row)] = row_max + std::log(denominator);
        }
      }
    }
  }
}

}  // namespace sdpa
