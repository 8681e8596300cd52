// sdpa_bench: libsdpa per ISA, per shape, per thread count, next to the
// unfused OpenBLAS baseline and a naive loop, with the machine's FMA peak and
// read bandwidth measured at startup so that the percentages are honest.
//
// Names: BM_Attention/<ISA>/<shape>/threads:<n>, BM_UnfusedBlas/<shape>/
// threads:<n>, BM_Naive/<shape>/threads:1. "threads" is the library's (or
// OpenBLAS's) thread count, not Google Benchmark's: every benchmark is driven
// from one thread and timed in real time.
//
// Counters (per call, from the wall-clock time of the timed loop):
//   GFLOPS    useful GFLOP/s: 2 * (Dk + Dv) flops per visible (query, key)
//             pair, see UsefulFlops in shapes.h;
//   pct_peak  GFLOPS as % of the FMA peak measured at startup for the same
//             ISA and thread count (baselines: the best ISA's peak); on
//             AVX3_ZEN4 with BF16 inputs, of the roofline of the two
//             peaks its parts run at (EffectivePeak);
//   KV_GBps   decode only: bytes of K and V (B*Hkv*Tk*(Dk+Dv)*4) per second;
//   pct_bw    decode only: KV_GBps as % of the read bandwidth measured at
//             startup for the same thread count.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "benchmarks/baselines.h"
#include "benchmarks/inputs.h"
#include "benchmarks/peak.h"
#include "benchmarks/shapes.h"
#include "sdpa/sdpa.h"

namespace sdpa_bench {
namespace {

// Naive loops only for shapes this small: beyond, one call takes seconds.
constexpr int64_t kNaiveMaxLength = 512;

// Outputs are convex combinations of V rows in [-1, 1]; fp32 rounding stays
// orders of magnitude below this, a wrong mask or block does not.
constexpr double kCheckTolerance = 1e-3;

// The ceilings measured at startup.
struct Ceilings {
  std::map<std::pair<uint64_t, int>, double> fma_gflops;  // (isa, threads)
  std::map<int, double> best_fma_gflops;                  // over ISAs
  std::map<int, double> read_gbps;                        // threads
  std::map<int, double> bf16_dot_gflops;  // threads, where AVX3_ZEN4 runs
};

Ceilings& GetCeilings() {
  static Ceilings ceilings;
  return ceilings;
}

// The ISAs this build and CPU run, as SDPA_ISA_* bits, highest bit first.
std::vector<uint64_t> AvailableIsas() {
  std::vector<uint64_t> isas;
  const uint64_t all = sdpa_available_isas();
  for (int bit = 63; bit >= 0; --bit) {
    if (all & (uint64_t{1} << bit)) isas.push_back(uint64_t{1} << bit);
  }
  return isas;
}

// What libsdpa calls "all hardware threads" (its default context).
int AllThreads() {
  sdpa_context* context = nullptr;
  int threads = 0;
  if (sdpa_context_create(nullptr, &context) == SDPA_OK) {
    threads = sdpa_context_num_threads(context);
    sdpa_context_destroy(context);
  }
  if (threads < 1)
    threads = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(threads, 1);
}

// Contexts are created once per (ISA, threads), on first use, and destroyed
// after the run: a context owns a thread arena, which is far too costly to
// create per call.
class Contexts {
 public:
  // Called by main once the run is over, while oneTBB is still alive.
  void DestroyAll() {
    for (auto& entry : contexts_) sdpa_context_destroy(entry.second);
    contexts_.clear();
  }
  // nullptr (and *error set) if the context cannot be created.
  sdpa_context* Get(uint64_t isa, int threads, std::string* error) {
    sdpa_context*& context = contexts_[{isa, threads}];
    if (context == nullptr) {
      sdpa_context_options options{};
      options.struct_size = sizeof(options);
      options.num_threads = threads;
      options.isa = isa;
      const sdpa_status status = sdpa_context_create(&options, &context);
      if (status != SDPA_OK) {
        *error = std::string("sdpa_context_create: ") +
                 sdpa_status_string(status) + ": " + sdpa_last_error();
        context = nullptr;
      }
    }
    return context;
  }

 private:
  std::map<std::pair<uint64_t, int>, sdpa_context*> contexts_;
};

Contexts& GetContexts() {
  static Contexts contexts;
  return contexts;
}

// The baseline's Tq x Tk score matrix, kept between calls (up to 256 MiB at
// T=8192) and touched when allocated, so no page fault lands in a timed loop.
FloatBuffer* ScoresFor(const Shape& shape) {
  static FloatBuffer scores;
  const size_t count = static_cast<size_t>(shape.q_len * shape.kv_len);
  if (scores.size() < count) {
    scores = FloatBuffer();  // free the old one first
    scores = FloatBuffer(count);
    std::fill(scores.data(), scores.data() + count, 0.0f);
  }
  return &scores;
}

// Runs `call` (returns "" or an error) in the timed loop and sets the
// counters from the wall-clock seconds per call.
template <class Call>
void TimeCalls(benchmark::State& state, const Shape& shape, double peak_gflops,
               double read_gbps, const Call& call) {
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const std::string error = call();
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count() /
      static_cast<double>(state.iterations());
  const double gflops = UsefulFlops(shape) / seconds * 1e-9;
  state.counters["GFLOPS"] = gflops;
  state.counters["pct_peak"] =
      peak_gflops > 0 ? 100.0 * gflops / peak_gflops : 0;
  if (shape.decode) {
    const double gbps = KeyValueBytes(shape) / seconds * 1e-9;
    state.counters["KV_GBps"] = gbps;
    state.counters["pct_bw"] = read_gbps > 0 ? 100.0 * gbps / read_gbps : 0;
  }
}

// Before the first timed call of a benchmark: one untimed call (also a
// warm-up) whose output is checked against double precision.
template <class Call>
bool FirstCallIsCorrect(benchmark::State& state, Inputs* inputs, bool* checked,
                        const Call& call) {
  if (*checked) return true;
  PoisonOutput(inputs);
  std::string error = call();
  if (error.empty()) error = CheckSampledRows(*inputs, kCheckTolerance);
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return false;
  }
  *checked = true;
  return true;
}

// The peak GFLOP/s libsdpa's code for `shape` could reach on `isa`: the
// ISA's FMA peak, except on AVX3_ZEN4 with BF16 inputs, where Q·Kᵀ (the
// 2*Dk flops of a pair) may run on BF16 dot products, and so may P·V (2*Dv)
// for prefill with SDPA_FLAG_BF16_WEIGHTS: then the roofline of the two,
// (Dk + Dv) / (Dk / qk_peak + Dv / pv_peak), or the FMA peak where that is
// higher (a CPU whose dot instruction is slower than two FMAs: libsdpa's
// prefill then stays on FMAs). 0 where a peak is unknown.
double EffectivePeak(const Shape& shape, uint64_t isa, int threads) {
  const Ceilings& ceilings = GetCeilings();
  const auto fma = ceilings.fma_gflops.find({isa, threads});
  if (fma == ceilings.fma_gflops.end() || fma->second <= 0) return 0.0;
  if (isa != SDPA_ISA_AVX3_ZEN4 || shape.dtype != SDPA_DTYPE_BF16) {
    return fma->second;
  }
  const auto dot = ceilings.bf16_dot_gflops.find(threads);
  if (dot == ceilings.bf16_dot_gflops.end() || dot->second <= 0) return 0.0;
  const bool pv_on_dots =
      (shape.flags & SDPA_FLAG_BF16_WEIGHTS) != 0 && !shape.decode;
  const double dk = static_cast<double>(shape.head_dim);
  const double dv = static_cast<double>(shape.value_dim);
  const double roofline =
      (dk + dv) /
      (dk / dot->second + dv / (pv_on_dots ? dot->second : fma->second));
  return std::max(roofline, fma->second);
}

void RegisterAttention(const Shape& shape, uint64_t isa, int threads) {
  const std::string name = std::string("BM_Attention/") + sdpa_isa_name(isa) +
                           "/" + shape.name +
                           "/threads:" + std::to_string(threads);
  auto checked = std::make_shared<bool>(false);
  benchmark::RegisterBenchmark(
      name.c_str(),
      [shape, isa, threads, checked](benchmark::State& state) {
        std::string error;
        sdpa_context* context = GetContexts().Get(isa, threads, &error);
        if (context == nullptr) {
          state.SkipWithError(error.c_str());
          return;
        }
        Inputs* inputs = InputsFor(shape);
        auto call = [&]() -> std::string {
          const sdpa_status status = sdpa_attention(context, &inputs->args);
          if (status == SDPA_OK) return "";
          return std::string("sdpa_attention: ") + sdpa_status_string(status) +
                 ": " + sdpa_last_error();
        };
        if (!FirstCallIsCorrect(state, inputs, checked.get(), call)) return;
        const Ceilings& ceilings = GetCeilings();
        TimeCalls(state, shape, EffectivePeak(shape, isa, threads),
                  ceilings.read_gbps.count(threads)
                      ? ceilings.read_gbps.at(threads)
                      : 0.0,
                  call);
      })
      ->UseRealTime()
      ->Unit(shape.decode ? benchmark::kMicrosecond : benchmark::kMillisecond);
}

// A baseline: `run(inputs, threads, scores)` computes the attention.
template <class Run>
void RegisterBaseline(const std::string& kind, const Shape& shape, int threads,
                      Run run) {
  const std::string name =
      "BM_" + kind + "/" + shape.name + "/threads:" + std::to_string(threads);
  auto checked = std::make_shared<bool>(false);
  benchmark::RegisterBenchmark(
      name.c_str(),
      [shape, threads, checked, run](benchmark::State& state) {
        Inputs* inputs = InputsFor(shape);
        FloatBuffer* scores = ScoresFor(shape);
        auto call = [&]() -> std::string {
          run(inputs, threads, scores);
          return "";
        };
        if (!FirstCallIsCorrect(state, inputs, checked.get(), call)) return;
        const Ceilings& ceilings = GetCeilings();
        TimeCalls(state, shape,
                  ceilings.best_fma_gflops.count(threads)
                      ? ceilings.best_fma_gflops.at(threads)
                      : 0.0,
                  ceilings.read_gbps.count(threads)
                      ? ceilings.read_gbps.at(threads)
                      : 0.0,
                  call);
      })
      ->UseRealTime()
      ->Unit(shape.decode ? benchmark::kMicrosecond : benchmark::kMillisecond);
}

std::string Format(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", value);
  return text;
}

// Measures the ceilings, prints them in the context block of every report
// (console and JSON) and keeps them for the % counters.
void MeasureCeilings(const std::vector<uint64_t>& isas,
                     const std::vector<int>& thread_counts) {
  Ceilings& ceilings = GetCeilings();
  for (int threads : thread_counts) {
    const std::string suffix = "/threads:" + std::to_string(threads);
    for (uint64_t isa : isas) {
      const double gflops = MeasureFmaPeakGflops(isa, threads);
      if (gflops <= 0) {
        std::fprintf(stderr,
                     "sdpa_bench: no FMA loop for %s in this binary; its "
                     "pct_peak counters read 0\n",
                     sdpa_isa_name(isa));
      }
      ceilings.fma_gflops[{isa, threads}] = gflops;
      ceilings.best_fma_gflops[threads] =
          std::max(ceilings.best_fma_gflops[threads], gflops);
      benchmark::AddCustomContext(
          std::string("fma_peak_gflops/") + sdpa_isa_name(isa) + suffix,
          Format(gflops));
    }
    if (std::find(isas.begin(), isas.end(), SDPA_ISA_AVX3_ZEN4) != isas.end()) {
      const double dot = MeasureBf16DotPeakGflops(threads);
      ceilings.bf16_dot_gflops[threads] = dot;
      benchmark::AddCustomContext("bf16_dot_peak_gflops" + suffix, Format(dot));
    }
    ceilings.read_gbps[threads] = MeasureReadBandwidthGBps(threads);
    benchmark::AddCustomContext("read_bw_gbps" + suffix,
                                Format(ceilings.read_gbps[threads]));
  }
}

bool ListingOnly(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (std::strncmp(arg, "--benchmark_list_tests", 22) == 0 &&
        std::strstr(arg, "=false") == nullptr &&
        std::strstr(arg, "=0") == nullptr) {
      return true;
    }
  }
  return false;
}

}  // namespace
}  // namespace sdpa_bench

int main(int argc, char** argv) {
  using namespace sdpa_bench;  // NOLINT(build/namespaces)
  const bool listing_only = ListingOnly(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const std::vector<uint64_t> isas = AvailableIsas();
  const int all_threads = AllThreads();
  std::vector<int> thread_counts = {1};
  if (all_threads > 1) thread_counts.push_back(all_threads);

  const uint32_t version = sdpa_version();
  benchmark::AddCustomContext("sdpa_version",
                              std::to_string(version >> 16) + "." +
                                  std::to_string((version >> 8) & 0xff) + "." +
                                  std::to_string(version & 0xff));
  benchmark::AddCustomContext("openblas_core", OpenBlasCoreName());
  if (!listing_only) MeasureCeilings(isas, thread_counts);

  // Shape-major order: consecutive benchmarks share the shape's inputs,
  // which are allocated and filled once (see InputsFor).
  for (const Shape& shape : AllShapes()) {
    const bool f32 = shape.dtype == SDPA_DTYPE_F32;
    for (int threads : thread_counts) {
      for (uint64_t isa : isas) {
        // AVX3_ZEN4 runs AVX3's code for F32 inputs: measured once, as AVX3.
        // SDPA_FLAG_BF16_WEIGHTS changes only AVX3_ZEN4's code.
        const bool zen4 = isa == SDPA_ISA_AVX3_ZEN4;
        if (shape.flags != 0 ? zen4 : !f32 || !zen4) {
          RegisterAttention(shape, isa, threads);
        }
      }
      // The baselines take F32 inputs.
      if (f32 && HaveOpenBlas()) {
        RegisterBaseline("UnfusedBlas", shape, threads, UnfusedBlasAttention);
      }
    }
    if (f32 && shape.q_len <= kNaiveMaxLength &&
        shape.kv_len <= kNaiveMaxLength) {
      RegisterBaseline(
          "Naive", shape, 1,
          [](Inputs* inputs, int, FloatBuffer*) { NaiveAttention(inputs); });
    }
  }

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  GetContexts().DestroyAll();
  return 0;
}
