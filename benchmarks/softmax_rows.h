// A vectorised row softmax for the unfused BLAS baseline, so that the
// baseline is as good as a careful user would make it, not a straw man.
#ifndef SDPA_BENCHMARKS_SOFTMAX_ROWS_H_
#define SDPA_BENCHMARKS_SOFTMAX_ROWS_H_

#include <cstdint>

namespace sdpa_bench {

// Replaces row[0, visible) by its softmax and zeroes row[visible, count)
// (the masked keys). 0 <= visible <= count; a row with visible == 0 becomes
// all zeros. Uses the best vector code the CPU runs (Highway's Exp).
void SoftmaxRow(float* row, int64_t visible, int64_t count);

}  // namespace sdpa_bench

#endif  // SDPA_BENCHMARKS_SOFTMAX_ROWS_H_
