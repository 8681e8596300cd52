// The attention problems the suite measures and the work each one does.
#ifndef SDPA_BENCHMARKS_SHAPES_H_
#define SDPA_BENCHMARKS_SHAPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sdpa/sdpa.h"

namespace sdpa_bench {

// One problem, inputs contiguous BHSD.
struct Shape {
  std::string name;  // "B1_H8_T2048_D128", "B1_H32_Tq1_Tk4096_D128", ...
  int64_t batch = 1;
  int64_t q_heads = 8;
  int64_t kv_heads = 8;
  int64_t q_len = 0;
  int64_t kv_len = 0;
  int64_t head_dim = 0;   // Dk
  int64_t value_dim = 0;  // Dv
  sdpa_causal causal = SDPA_CAUSAL_NONE;
  bool decode = false;  // memory-bound: report K/V bandwidth too
  // Of Q, K and V ("_bf16" in the name); the output is F32 either way.
  sdpa_dtype dtype = SDPA_DTYPE_F32;
  // sdpa_attention_args.flags; SDPA_FLAG_BF16_WEIGHTS: "_bf16w" in the name.
  uint32_t flags = 0;
};

// Every shape of the suite, in the order the benchmarks are registered.
std::vector<Shape> AllShapes();

// The keys query `query` (0-based) sees under the shape's causal rule: keys
// [0, VisibleKeys) (the suite uses no window and no mask).
int64_t VisibleKeys(const Shape& shape, int64_t query);

// Sum over queries of VisibleKeys: the (query, key) pairs of one head.
int64_t VisiblePairsPerHead(const Shape& shape);

// Useful floating-point operations of one call. Each visible (query, key)
// pair costs a Dk-long dot product for the score and a Dv-long
// multiply-accumulate into the output, i.e. 2*Dk + 2*Dv flops:
//   flops = 2 * (Dk + Dv) * B * Hq * visible_pairs
//         = 4 * B * Hq * visible_pairs * (Dk + Dv) / 2.
// Softmax work is not counted, and masked pairs count nothing, so a kernel
// (or a baseline) that computes masked scores gets no credit for them.
double UsefulFlops(const Shape& shape);

// Bytes of K and V one call must read at least: B * Hkv * Tk * (Dk + Dv) *
// the element size (4 for F32, 2 for BF16).
double KeyValueBytes(const Shape& shape);

}  // namespace sdpa_bench

#endif  // SDPA_BENCHMARKS_SHAPES_H_
