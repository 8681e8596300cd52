#include "benchmarks/shapes.h"

#include <algorithm>

namespace sdpa_bench {
namespace {

std::string HeadsName(int64_t q_heads, int64_t kv_heads) {
  if (q_heads == kv_heads) return "H" + std::to_string(q_heads);
  return "Hq" + std::to_string(q_heads) + "_Hkv" + std::to_string(kv_heads);
}

std::string LengthsName(int64_t q_len, int64_t kv_len) {
  if (q_len == kv_len) return "T" + std::to_string(q_len);
  return "Tq" + std::to_string(q_len) + "_Tk" + std::to_string(kv_len);
}

std::string DimsName(int64_t head_dim, int64_t value_dim) {
  if (head_dim == value_dim) return "D" + std::to_string(head_dim);
  return "Dk" + std::to_string(head_dim) + "_Dv" + std::to_string(value_dim);
}

Shape MakeShape(int64_t q_heads, int64_t kv_heads, int64_t q_len,
                int64_t kv_len, int64_t head_dim, int64_t value_dim,
                sdpa_causal causal, bool decode,
                sdpa_dtype dtype = SDPA_DTYPE_F32, uint32_t flags = 0) {
  Shape shape;
  shape.batch = 1;
  shape.q_heads = q_heads;
  shape.kv_heads = kv_heads;
  shape.q_len = q_len;
  shape.kv_len = kv_len;
  shape.head_dim = head_dim;
  shape.value_dim = value_dim;
  shape.causal = causal;
  shape.decode = decode;
  shape.dtype = dtype;
  shape.flags = flags;
  shape.name = "B1_" + HeadsName(q_heads, kv_heads) + "_" +
               LengthsName(q_len, kv_len) + "_" + DimsName(head_dim, value_dim);
  if (causal == SDPA_CAUSAL_TOP_LEFT) shape.name += "_causal_tl";
  if (causal == SDPA_CAUSAL_BOTTOM_RIGHT) shape.name += "_causal_br";
  if (dtype == SDPA_DTYPE_BF16) {
    shape.name += flags & SDPA_FLAG_BF16_WEIGHTS ? "_bf16w" : "_bf16";
  }
  return shape;
}

}  // namespace

std::vector<Shape> AllShapes() {
  std::vector<Shape> shapes;
  // Prefill, 8 heads: full, causal square (top-left and bottom-right are the
  // same there), and bottom-right causal with half as many queries as keys
  // (a chunk of a prompt appended to a cache).
  for (int64_t t : {512, 2048, 4096, 8192}) {
    for (int64_t d : {64, 128}) {
      shapes.push_back(MakeShape(8, 8, t, t, d, d, SDPA_CAUSAL_NONE, false));
      shapes.push_back(
          MakeShape(8, 8, t, t, d, d, SDPA_CAUSAL_TOP_LEFT, false));
      shapes.push_back(
          MakeShape(8, 8, t / 2, t, d, d, SDPA_CAUSAL_BOTTOM_RIGHT, false));
    }
  }
  // Grouped-query attention: 4 query heads per K/V head.
  shapes.push_back(
      MakeShape(32, 8, 2048, 2048, 128, 128, SDPA_CAUSAL_NONE, false));
  // Value width different from key width (MLA-style 192/128).
  shapes.push_back(
      MakeShape(8, 8, 2048, 2048, 192, 128, SDPA_CAUSAL_NONE, false));
  // Decode: one token, or a few (speculative decoding), against a long cache.
  for (int64_t tk : {4096, 32768}) {
    for (int64_t tq : {1, 8}) {
      shapes.push_back(
          MakeShape(32, 32, tq, tk, 128, 128, SDPA_CAUSAL_NONE, true));
    }
  }
  for (int64_t tk : {4096, 32768}) {
    shapes.push_back(MakeShape(32, 8, 1, tk, 128, 128, SDPA_CAUSAL_NONE, true));
  }
  // BF16 Q, K and V (a BF16 model or KV cache): prefill, where AVX3_ZEN4
  // computes Q·Kᵀ on BF16 dot products, and decoding, which reads the
  // 16-bit K/V rows in place.
  constexpr sdpa_dtype kBf16 = SDPA_DTYPE_BF16;
  for (int64_t t : {2048, 4096}) {
    for (int64_t d : {64, 128}) {
      shapes.push_back(
          MakeShape(8, 8, t, t, d, d, SDPA_CAUSAL_NONE, false, kBf16));
    }
  }
  shapes.push_back(MakeShape(8, 8, 2048, 2048, 128, 128, SDPA_CAUSAL_TOP_LEFT,
                             false, kBf16));
  shapes.push_back(
      MakeShape(32, 8, 2048, 2048, 128, 128, SDPA_CAUSAL_NONE, false, kBf16));
  // The same prefill with SDPA_FLAG_BF16_WEIGHTS: P·V on BF16 dot products
  // too (AVX3_ZEN4; elsewhere the flag changes nothing).
  constexpr uint32_t kBf16Weights = SDPA_FLAG_BF16_WEIGHTS;
  for (int64_t t : {2048, 4096}) {
    for (int64_t d : {64, 128}) {
      shapes.push_back(MakeShape(8, 8, t, t, d, d, SDPA_CAUSAL_NONE, false,
                                 kBf16, kBf16Weights));
    }
  }
  shapes.push_back(MakeShape(8, 8, 2048, 2048, 128, 128, SDPA_CAUSAL_TOP_LEFT,
                             false, kBf16, kBf16Weights));
  shapes.push_back(MakeShape(32, 8, 2048, 2048, 128, 128, SDPA_CAUSAL_NONE,
                             false, kBf16, kBf16Weights));
  for (int64_t tq : {1, 8}) {
    shapes.push_back(
        MakeShape(32, 32, tq, 4096, 128, 128, SDPA_CAUSAL_NONE, true, kBf16));
  }
  shapes.push_back(
      MakeShape(32, 8, 1, 4096, 128, 128, SDPA_CAUSAL_NONE, true, kBf16));
  return shapes;
}

int64_t VisibleKeys(const Shape& shape, int64_t query) {
  // Diagonal d(i) from include/sdpa/sdpa.h: i for TOP_LEFT, i + Tk - Tq
  // otherwise; causal masking keeps keys j <= d(i).
  int64_t diagonal = query;
  switch (shape.causal) {
    case SDPA_CAUSAL_NONE:
      return shape.kv_len;
    case SDPA_CAUSAL_TOP_LEFT:
      diagonal = query;
      break;
    case SDPA_CAUSAL_BOTTOM_RIGHT:
      diagonal = query + shape.kv_len - shape.q_len;
      break;
  }
  return std::clamp<int64_t>(diagonal + 1, 0, shape.kv_len);
}

int64_t VisiblePairsPerHead(const Shape& shape) {
  int64_t pairs = 0;
  for (int64_t i = 0; i < shape.q_len; ++i) pairs += VisibleKeys(shape, i);
  return pairs;
}

double UsefulFlops(const Shape& shape) {
  return 2.0 * static_cast<double>(shape.head_dim + shape.value_dim) *
         static_cast<double>(shape.batch * shape.q_heads) *
         static_cast<double>(VisiblePairsPerHead(shape));
}

double KeyValueBytes(const Shape& shape) {
  const double elem_bytes = shape.dtype == SDPA_DTYPE_F32 ? 4.0 : 2.0;
  return static_cast<double>(shape.batch * shape.kv_heads * shape.kv_len) *
         static_cast<double>(shape.head_dim + shape.value_dim) * elem_bytes;
}

}  // namespace sdpa_bench
