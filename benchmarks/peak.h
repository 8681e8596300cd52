// The machine's ceilings, measured by the suite in the same run as the
// benchmarks so that "% of peak" and "% of bandwidth" are honest for the
// machine and moment they were taken on.
#ifndef SDPA_BENCHMARKS_PEAK_H_
#define SDPA_BENCHMARKS_PEAK_H_

#include <cstdint>

namespace sdpa_bench {

// fp32 FMA throughput in GFLOP/s (an FMA counts 2 flops) of `threads`
// threads running at once, each a loop of independent vector FMAs compiled
// for the Highway target of `isa` (one SDPA_ISA_* bit): the sum over threads
// of each thread's best rate over many short trials. Returns 0 when this
// binary has no code for that ISA or the CPU cannot run it.
double MeasureFmaPeakGflops(uint64_t isa, int threads);

// The same for AVX512_BF16's vdpbf16ps (16 lanes of BF16 pairs, 64 flops an
// instruction), which AVX3_ZEN4's BF16 Q·Kᵀ and, with
// SDPA_FLAG_BF16_WEIGHTS, its P·V run on. 0 where the CPU or build lacks
// AVX3_ZEN4.
double MeasureBf16DotPeakGflops(int threads);

// Read bandwidth in GB/s (1e9 bytes) of `threads` threads summing disjoint
// slices of one 256 MiB buffer with the best vector code the CPU runs.
// Best of 64 passes.
double MeasureReadBandwidthGBps(int threads);

}  // namespace sdpa_bench

#endif  // SDPA_BENCHMARKS_PEAK_H_
