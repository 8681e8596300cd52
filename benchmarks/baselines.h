// What a user would write without libsdpa, measured on the same inputs.
#ifndef SDPA_BENCHMARKS_BASELINES_H_
#define SDPA_BENCHMARKS_BASELINES_H_

#include "benchmarks/inputs.h"

namespace sdpa_bench {

// True when this binary was built with OpenBLAS (BM_UnfusedBlas exists).
bool HaveOpenBlas();

// The kernel set OpenBLAS chose for this CPU ("Haswell", "SkylakeX", ...;
// OPENBLAS_CORETYPE overrides it), or "none" without OpenBLAS. Worth
// printing: an OpenBLAS older than the CPU falls back to older kernels.
const char* OpenBlasCoreName();

// Unfused attention with OpenBLAS, head by head: S = scale * Q·Kᵀ with
// cblas_sgemm into `scores` (Tq x Tk floats), a vectorised row softmax that
// zeroes causally masked keys, then O = P·V with cblas_sgemm. OpenBLAS runs
// `threads` threads inside each sgemm and the softmax rows are split over
// `threads` oneTBB threads, as PyTorch's unfused path does. The full Tq x Tk
// products are computed even when causal (that is what the user's code does);
// the suite credits only the visible pairs. Requires HaveOpenBlas().
void UnfusedBlasAttention(Inputs* inputs, int threads, FloatBuffer* scores);

// The textbook triple loop in plain scalar C++, one query at a time,
// one thread. For small shapes only.
void NaiveAttention(Inputs* inputs);

}  // namespace sdpa_bench

#endif  // SDPA_BENCHMARKS_BASELINES_H_
