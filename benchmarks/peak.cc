// The FMA-throughput and read-bandwidth loops behind peak.h, compiled once per
// Highway target (foreach_target) so that each ISA's peak is measured with
// that ISA's vectors.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "benchmarks/peak.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa_bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Runs `iterations` rounds of 12 independent vector FMAs and returns the
// flops done. 12 chains cover 4-cycle FMA latency on two FMA pipes with room
// to spare, and 12 accumulators plus 2 operands fit the 16 registers of
// AVX2/SSE, so nothing spills. operands[0] and [1] are multiplier and addend,
// operands[2..13] the start values, all read from memory and all different
// so that the compiler can neither fold the loop nor merge the chains; the
// sum of the accumulators goes to *sink so it cannot drop them. With a
// multiplier just below 1 the values converge and never overflow.
double FmaLoop(int64_t iterations, const float* operands, float* sink) {
  const hn::ScalableTag<float> d;
  const auto mul = hn::Set(d, operands[0]);
  const auto add = hn::Set(d, operands[1]);
  auto a0 = hn::Set(d, operands[2]), a1 = hn::Set(d, operands[3]);
  auto a2 = hn::Set(d, operands[4]), a3 = hn::Set(d, operands[5]);
  auto a4 = hn::Set(d, operands[6]), a5 = hn::Set(d, operands[7]);
  auto a6 = hn::Set(d, operands[8]), a7 = hn::Set(d, operands[9]);
  auto a8 = hn::Set(d, operands[10]), a9 = hn::Set(d, operands[11]);
  auto a10 = hn::Set(d, operands[12]), a11 = hn::Set(d, operands[13]);
  for (int64_t i = 0; i < iterations; ++i) {
    a0 = hn::MulAdd(a0, mul, add);
    a1 = hn::MulAdd(a1, mul, add);
    a2 = hn::MulAdd(a2, mul, add);
    a3 = hn::MulAdd(a3, mul, add);
    a4 = hn::MulAdd(a4, mul, add);
    a5 = hn::MulAdd(a5, mul, add);
    a6 = hn::MulAdd(a6, mul, add);
    a7 = hn::MulAdd(a7, mul, add);
    a8 = hn::MulAdd(a8, mul, add);
    a9 = hn::MulAdd(a9, mul, add);
    a10 = hn::MulAdd(a10, mul, add);
    a11 = hn::MulAdd(a11, mul, add);
  }
  const auto sum = hn::Add(hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)),
                                   hn::Add(hn::Add(a4, a5), hn::Add(a6, a7))),
                           hn::Add(hn::Add(a8, a9), hn::Add(a10, a11)));
  *sink = hn::GetLane(hn::SumOfLanes(d, sum));
  return 2.0 * 12.0 * static_cast<double>(hn::Lanes(d)) *
         static_cast<double>(iterations);
}

// Sums `count` floats (a multiple of 8 vectors) from 64-byte aligned `data`.
// Eight independent sums keep the loads, not the adds, the limit.
float SumFloats(const float* HWY_RESTRICT data, size_t count) {
  const hn::ScalableTag<float> d;
  const size_t n = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = s0, s2 = s0, s3 = s0;
  auto s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  for (size_t i = 0; i + 8 * n <= count; i += 8 * n) {
    s0 = hn::Add(s0, hn::Load(d, data + i));
    s1 = hn::Add(s1, hn::Load(d, data + i + n));
    s2 = hn::Add(s2, hn::Load(d, data + i + 2 * n));
    s3 = hn::Add(s3, hn::Load(d, data + i + 3 * n));
    s4 = hn::Add(s4, hn::Load(d, data + i + 4 * n));
    s5 = hn::Add(s5, hn::Load(d, data + i + 5 * n));
    s6 = hn::Add(s6, hn::Load(d, data + i + 6 * n));
    s7 = hn::Add(s7, hn::Load(d, data + i + 7 * n));
  }
  const auto sum = hn::Add(hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)),
                           hn::Add(hn::Add(s4, s5), hn::Add(s6, s7)));
  return hn::GetLane(hn::SumOfLanes(d, sum));
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa_bench
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "benchmarks/peak.h"
#include "hwy/aligned_allocator.h"
#include "hwy/targets.h"
#include "sdpa/sdpa.h"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

namespace sdpa_bench {

HWY_EXPORT(FmaLoop);
HWY_EXPORT(SumFloats);

namespace {

#if HWY_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
// FmaLoop's pattern on AVX512_BF16's vdpbf16ps (Highway 1.0.3 has no op
// for it): 12 independent chains, each instruction 16 lanes x 2 products
// added, i.e. 64 flops. The BF16 operands (pairs of small values) come from
// memory, so the accumulators grow by a constant and never overflow.
__attribute__((target("avx512f,avx512bf16"))) double DotBf16Loop(
    int64_t iterations, const float* operands, float* sink) {
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(operands[0]),
                                         _mm512_set1_ps(operands[0]));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(operands[1]),
                                         _mm512_set1_ps(operands[1]));
  __m512 c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm512_set1_ps(operands[2 + i]);
  for (int64_t n = 0; n < iterations; ++n) {
    for (int i = 0; i < 12; ++i) c[i] = _mm512_dpbf16_ps(c[i], a, b);
  }
  __m512 sum = c[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, c[i]);
  *sink = _mm512_reduce_add_ps(sum);
  return 64.0 * 12.0 * static_cast<double>(iterations);
}
#endif

using Clock = std::chrono::steady_clock;

// Keeps every loop's result observable.
std::atomic<float> g_sink{0.0f};

// The Highway target compiled here whose name is the ISA's name; libsdpa's
// SCALAR is Highway's portable fallback (EMU128, or SCALAR on old builds).
int64_t HwyTargetOf(uint64_t isa) {
  const int64_t compiled = hwy::SupportedTargets() & HWY_TARGETS;
  // AVX3_ZEN4 is AVX3 plus BF16 dot products (no Highway target of its
  // own here): its f32 FMA peak is AVX3's, which its BF16 Q·Kᵀ may exceed.
  const char* name = isa == SDPA_ISA_AVX3_ZEN4 ? "AVX3" : sdpa_isa_name(isa);
  if (std::strcmp(name, "SCALAR") == 0) {
    if (compiled & HWY_EMU128) return HWY_EMU128;
    if (compiled & HWY_SCALAR) return HWY_SCALAR;
    return 0;
  }
  for (int64_t rest = compiled; rest != 0; rest &= rest - 1) {
    const int64_t target = rest & -rest;
    if (std::strcmp(hwy::TargetName(target), name) == 0) return target;
  }
  return 0;
}

// Runs body(thread_index) on `threads` threads released together and returns
// the wall-clock seconds from the release until the last one finished.
// Thread creation is not timed: the threads spin until released.
template <class Body>
double TimeOnThreads(int threads, const Body& body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      body(t);
    });
  }
  while (ready.load() != threads) {
  }
  const Clock::time_point start = Clock::now();
  go.store(true, std::memory_order_release);
  for (std::thread& thread : pool) thread.join();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The GFLOP/s of `threads` threads running loop(iterations, operands,
// sink) at once: each thread's best rate over many short trials, summed.
template <class Loop>
double MeasureLoopPeak(int threads, const Loop& loop) {
  float operands[14] = {0.999999f, 1e-6f};
  for (int i = 2; i < 14; ++i) operands[i] = 1.0f + 0.125f * i;
  auto run = [&](int64_t iterations) {
    float sink = 0.0f;
    const double flops = loop(iterations, operands, &sink);
    g_sink.store(g_sink.load() + sink);
    return flops;
  };
  // Size one trial to ~1 ms on one thread.
  int64_t iterations = 1 << 10;
  for (;;) {
    const Clock::time_point start = Clock::now();
    run(iterations);
    const double seconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    if (seconds > 0.0005) {
      iterations = static_cast<int64_t>(iterations * (0.001 / seconds)) + 1;
      break;
    }
    iterations *= 2;
  }
  // All threads run 200 trials of ~1 ms at the same time; each keeps its
  // best rate and the peak is their sum. On a machine shared with other work
  // (builds, other users) every thread thus finds moments it had its core to
  // itself, shorter than a scheduler time slice, where one long timing would
  // charge it the other work. FMA units are per core, so the sum is the
  // concurrent peak (with SMT it may exceed it: % of peak then errs low).
  constexpr int kTrials = 200;
  std::vector<double> best_gflops(threads, 0.0);
  TimeOnThreads(threads, [&](int t) {
    for (int trial = 0; trial < kTrials; ++trial) {
      const Clock::time_point start = Clock::now();
      const double flops = run(iterations);
      const double seconds =
          std::chrono::duration<double>(Clock::now() - start).count();
      best_gflops[t] = std::max(best_gflops[t], flops / seconds * 1e-9);
    }
  });
  double total = 0.0;
  for (double gflops : best_gflops) total += gflops;
  return total;
}

}  // namespace

double MeasureFmaPeakGflops(uint64_t isa, int threads) {
  const int64_t target = HwyTargetOf(isa);
  if (target == 0 || threads < 1) return 0.0;
  // Dispatch to exactly this target, the way Highway's own per-target tests
  // do, and restore the real set before returning.
  hwy::SetSupportedTargetsForTest(target);
  const double peak = MeasureLoopPeak(
      threads, [](int64_t iterations, const float* operands, float* sink) {
        return HWY_DYNAMIC_DISPATCH(FmaLoop)(iterations, operands, sink);
      });
  hwy::SetSupportedTargetsForTest(0);
  return peak;
}

double MeasureBf16DotPeakGflops(int threads) {
  if (threads < 1 || (sdpa_available_isas() & SDPA_ISA_AVX3_ZEN4) == 0) {
    return 0.0;
  }
#if HWY_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
  return MeasureLoopPeak(threads, DotBf16Loop);
#else
  return 0.0;
#endif
}

double MeasureReadBandwidthGBps(int threads) {
  if (threads < 1) return 0.0;
  constexpr size_t kBytes = size_t{256} << 20;
  constexpr size_t kCount = kBytes / sizeof(float);
  hwy::AlignedFreeUniquePtr<float[]> buffer =
      hwy::AllocateAligned<float>(kCount);
  if (buffer == nullptr) return 0.0;
  // Slices of whole 4 KiB pages, so every slice stays aligned and a multiple
  // of 8 vectors of any width.
  const size_t page_floats = 4096 / sizeof(float);
  const size_t pages = kCount / page_floats;
  auto slice = [&](int t, size_t* begin, size_t* count) {
    const size_t first = pages * t / threads;
    const size_t last = pages * (t + 1) / threads;
    *begin = first * page_floats;
    *count = (last - first) * page_floats;
  };
  // Each thread first touches its own slice.
  TimeOnThreads(threads, [&](int t) {
    size_t begin, count;
    slice(t, &begin, &count);
    std::fill(buffer.get() + begin, buffer.get() + begin + count, 1.0f);
  });
  // Many passes of a few ms each (all threads together, timed as one): on a
  // shared machine some pass runs without interference.
  constexpr int kPasses = 64;
  double best_seconds = 1e30;
  for (int pass = 0; pass < kPasses; ++pass) {
    std::vector<float> sums(threads);
    const double seconds = TimeOnThreads(threads, [&](int t) {
      size_t begin, count;
      slice(t, &begin, &count);
      sums[t] = HWY_DYNAMIC_DISPATCH(SumFloats)(buffer.get() + begin, count);
    });
    for (float s : sums) g_sink.store(g_sink.load() + s);
    best_seconds = std::min(best_seconds, seconds);
  }
  return static_cast<double>(kBytes) / best_seconds * 1e-9;
}

}  // namespace sdpa_bench
#endif  // HWY_ONCE
