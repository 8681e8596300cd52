// sdpa_demo: runs one attention problem on every ISA this CPU and build
// offer, and prints time, GFLOP/s and the error against the float64
// reference. Exits 1 if any ISA fails or disagrees with the reference.
//
//   sdpa_demo [--batch=1] [--heads=8] [--seq=2048 | --tq=N --tk=N] [--dim=128]
//             [--threads=0] [--causal[=bottom_right|top_left]] [--runs=5]
//             [--check-heads=2] [--isa=NAME (one ISA only, e.g. AVX2)]
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sdpa/sdpa.h"
#include "src/dispatch.h"
#include "src/reference.h"

namespace {

// Loose on purpose: the demo shows the error, the tests hold the line.
constexpr double kMaxAbsError = 1e-4;
// Timed runs of one ISA stop after this many seconds (at least one run), so
// that a slow ISA (SCALAR) does not hold the demo up.
constexpr double kTimeBudgetSeconds = 5.0;
// Above this many multiply-adds the reference runs on a few sampled heads.
constexpr double kFullReferenceMacs = 2e8;

struct Options {
  int64_t batch = 1;
  int64_t heads = 8;
  int64_t queries = 2048;
  int64_t keys = 2048;
  int64_t dim = 128;
  int32_t threads = 0;
  sdpa_causal causal = SDPA_CAUSAL_NONE;
  int runs = 5;
  int64_t check_heads = 2;
  std::string isa;  // empty: every available ISA
};

void PrintUsage() {
  std::fprintf(stderr,
               "usage: sdpa_demo [--batch=N] [--heads=N] [--seq=N] [--tq=N] "
               "[--tk=N] [--dim=N] [--threads=N] "
               "[--causal[=bottom_right|top_left]] [--runs=N] "
               "[--check-heads=N] [--isa=NAME]\n");
}

// Parses "--name=value" (or "--name value") into `out`; false on bad input.
bool ParseInt(const char* text, int64_t min_value, int64_t* out) {
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || value < min_value) return false;
  *out = value;
  return true;
}

bool ParseOptions(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    std::string value;
    const size_t equals = name.find('=');
    if (equals != std::string::npos) {
      value = name.substr(equals + 1);
      name.resize(equals);
    }
    if (name == "--help" || name == "-h") return false;
    if (name == "--causal") {
      if (value.empty() || value == "bottom_right") {
        options->causal = SDPA_CAUSAL_BOTTOM_RIGHT;
      } else if (value == "top_left") {
        options->causal = SDPA_CAUSAL_TOP_LEFT;
      } else if (value == "none") {
        options->causal = SDPA_CAUSAL_NONE;
      } else {
        return false;
      }
      continue;
    }
    if (equals == std::string::npos) {
      if (i + 1 >= argc) return false;
      value = argv[++i];
    }
    if (name == "--isa") {
      options->isa = value;
      continue;
    }
    int64_t number = 0;
    const int64_t min_value = (name == "--threads") ? 0 : 1;
    if (!ParseInt(value.c_str(), min_value, &number)) return false;
    if (name == "--batch") {
      options->batch = number;
    } else if (name == "--heads") {
      options->heads = number;
    } else if (name == "--seq") {
      options->queries = options->keys = number;
    } else if (name == "--tq") {
      options->queries = number;
    } else if (name == "--tk") {
      options->keys = number;
    } else if (name == "--dim") {
      options->dim = number;
    } else if (name == "--threads") {
      options->threads = static_cast<int32_t>(number);
    } else if (name == "--runs") {
      options->runs = static_cast<int>(number);
    } else if (name == "--check-heads") {
      options->check_heads = number;
    } else {
      return false;
    }
  }
  return true;
}

// A contiguous [batch, heads, seq, dim] float tensor over `data`.
sdpa_tensor MakeTensor(float* data, int64_t batch, int64_t heads, int64_t seq,
                       int64_t dim) {
  sdpa_tensor t{};
  t.data = data;
  t.dtype = SDPA_DTYPE_F32;
  t.shape[0] = batch;
  t.shape[1] = heads;
  t.shape[2] = seq;
  t.shape[3] = dim;
  t.strides[3] = 1;
  t.strides[2] = dim;
  t.strides[1] = seq * dim;
  t.strides[0] = heads * seq * dim;
  return t;
}

// The (query, key) pairs the causal rule leaves visible: the FLOPs that count.
double VisiblePairs(const Options& o) {
  if (o.causal == SDPA_CAUSAL_NONE) {
    return static_cast<double>(o.queries) * static_cast<double>(o.keys);
  }
  double pairs = 0;
  for (int64_t i = 0; i < o.queries; ++i) {
    const int64_t diagonal =
        (o.causal == SDPA_CAUSAL_TOP_LEFT) ? i : i + o.keys - o.queries;
    pairs += static_cast<double>(std::clamp<int64_t>(diagonal + 1, 0, o.keys));
  }
  return pairs;
}

// The float64 reference of one (batch, head) slice, [Tq, D] contiguous.
struct HeadReference {
  int64_t batch;
  int64_t head;
  std::vector<double> out;
};

std::vector<HeadReference> ComputeReference(const Options& o,
                                            const sdpa_attention_args& args,
                                            int64_t heads_to_check) {
  const int64_t total = o.batch * o.heads;
  std::vector<HeadReference> references;
  for (int64_t n = 0; n < heads_to_check; ++n) {
    // Evenly spread over all heads, always including the first and the last.
    const int64_t index =
        heads_to_check == 1 ? 0 : n * (total - 1) / (heads_to_check - 1);
    HeadReference reference{index / o.heads, index % o.heads, {}};
    sdpa_tensor views[3] = {*args.q, *args.k, *args.v};
    for (sdpa_tensor& view : views) {
      view.data = static_cast<float*>(view.data) +
                  reference.batch * view.strides[0] +
                  reference.head * view.strides[1];
      view.shape[0] = view.shape[1] = 1;
    }
    sdpa_attention_args head_args = args;
    head_args.q = &views[0];
    head_args.k = &views[1];
    head_args.v = &views[2];
    std::vector<double> lse;
    sdpa::ReferenceAttention(head_args, &reference.out, &lse);
    references.push_back(std::move(reference));
  }
  return references;
}

// Largest |out - reference| over the checked heads; NaN if any output is NaN.
double MaxAbsError(const Options& o, const std::vector<float>& out,
                   const std::vector<HeadReference>& references) {
  double max_error = 0;
  for (const HeadReference& reference : references) {
    const float* head =
        out.data() +
        (reference.batch * o.heads + reference.head) * o.queries * o.dim;
    for (size_t i = 0; i < reference.out.size(); ++i) {
      const double error = std::fabs(head[i] - reference.out[i]);
      if (std::isnan(error)) return error;
      max_error = std::max(max_error, error);
    }
  }
  return max_error;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

const char* CausalName(sdpa_causal causal) {
  switch (causal) {
    case SDPA_CAUSAL_TOP_LEFT:
      return "top_left";
    case SDPA_CAUSAL_BOTTOM_RIGHT:
      return "bottom_right";
    default:
      return "none";
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) {
    PrintUsage();
    return 2;
  }
  // The ISAs to run: every available one, or the one --isa names.
  uint64_t selected = sdpa_available_isas();
  if (!o.isa.empty()) {
    selected &= sdpa::IsaFromName(o.isa.c_str());  // case-insensitive
    if (selected == 0) {
      std::fprintf(stderr, "--isa=%s: not an ISA this CPU and build offer\n",
                   o.isa.c_str());
      return 2;
    }
  }

  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  auto random_vector = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = uniform(rng);
    return v;
  };
  std::vector<float> q = random_vector(o.batch * o.heads * o.queries * o.dim);
  std::vector<float> k = random_vector(o.batch * o.heads * o.keys * o.dim);
  std::vector<float> v = random_vector(o.batch * o.heads * o.keys * o.dim);
  std::vector<float> out(q.size());
  sdpa_tensor q_t = MakeTensor(q.data(), o.batch, o.heads, o.queries, o.dim);
  sdpa_tensor k_t = MakeTensor(k.data(), o.batch, o.heads, o.keys, o.dim);
  sdpa_tensor v_t = MakeTensor(v.data(), o.batch, o.heads, o.keys, o.dim);
  sdpa_tensor out_t =
      MakeTensor(out.data(), o.batch, o.heads, o.queries, o.dim);
  sdpa_attention_args args{};
  args.struct_size = sizeof(args);
  args.q = &q_t;
  args.k = &k_t;
  args.v = &v_t;
  args.out = &out_t;
  args.causal = o.causal;
  args.window_left = -1;
  args.window_right = -1;

  const uint32_t version = sdpa_version();
  std::printf("sdpa %u.%u.%u demo: fp32, B=%" PRId64 " H=%" PRId64
              " Tq=%" PRId64 " Tk=%" PRId64 " D=%" PRId64 " causal=%s\n",
              version >> 16, (version >> 8) & 255, version & 255, o.batch,
              o.heads, o.queries, o.keys, o.dim, CausalName(o.causal));

  const int64_t total_heads = o.batch * o.heads;
  const double macs_per_head = static_cast<double>(o.queries) *
                               static_cast<double>(o.keys) *
                               static_cast<double>(o.dim);
  const int64_t heads_to_check =
      (macs_per_head * static_cast<double>(total_heads) <= kFullReferenceMacs)
          ? total_heads
          : std::min(o.check_heads, total_heads);
  const auto reference_start = std::chrono::steady_clock::now();
  const std::vector<HeadReference> references =
      ComputeReference(o, args, heads_to_check);
  std::printf("reference: float64 on %" PRId64 " of %" PRId64
              " heads%s, %.1f s\n",
              heads_to_check, total_heads,
              heads_to_check < total_heads
                  ? " (sampled evenly: the full reference would take long)"
                  : "",
              SecondsSince(reference_start));

  const double gflop = 4.0 * static_cast<double>(total_heads) *
                       static_cast<double>(o.dim) * VisiblePairs(o) * 1e-9;
  std::printf("%-9s %7s %11s %9s %13s %5s\n", "ISA", "threads", "median ms",
              "GFLOP/s", "max abs err", "runs");
  bool all_ok = selected != 0;
  // Highest bit first: on x86 that is the widest vector ISA.
  for (int bit = 63; bit >= 0; --bit) {
    const uint64_t isa = uint64_t{1} << bit;
    if ((selected & isa) == 0) continue;
    sdpa_context_options options{};
    options.struct_size = sizeof(options);
    options.num_threads = o.threads;
    options.isa = isa;
    sdpa_context* context = nullptr;
    sdpa_status status = sdpa_context_create(&options, &context);
    if (status != SDPA_OK) {
      std::printf("%-9s context: %s: %s\n", sdpa_isa_name(isa),
                  sdpa_status_string(status), sdpa_last_error());
      all_ok = false;
      continue;
    }
    // NaN first, so that an output the call forgets cannot pass as correct.
    std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
    status = sdpa_attention(context, &args);  // also warms caches and threads
    double error = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> seconds;
    if (status == SDPA_OK) {
      error = MaxAbsError(o, out, references);
      const auto budget_start = std::chrono::steady_clock::now();
      while (static_cast<int>(seconds.size()) < o.runs &&
             (seconds.empty() ||
              SecondsSince(budget_start) < kTimeBudgetSeconds)) {
        const auto start = std::chrono::steady_clock::now();
        status = sdpa_attention(context, &args);
        seconds.push_back(SecondsSince(start));
        if (status != SDPA_OK) break;
      }
    }
    if (status != SDPA_OK) {
      std::printf("%-9s attention: %s: %s\n", sdpa_isa_name(isa),
                  sdpa_status_string(status), sdpa_last_error());
      all_ok = false;
      sdpa_context_destroy(context);
      continue;
    }
    std::sort(seconds.begin(), seconds.end());
    const size_t middle = seconds.size() / 2;
    const double median = seconds.size() % 2
                              ? seconds[middle]
                              : 0.5 * (seconds[middle - 1] + seconds[middle]);
    const bool ok = error <= kMaxAbsError;
    all_ok = all_ok && ok;
    std::printf("%-9s %7d %11.2f %9.1f %13.2e %5zu%s\n", sdpa_isa_name(isa),
                sdpa_context_num_threads(context), median * 1e3, gflop / median,
                error, seconds.size(), ok ? "" : "  MISMATCH");
    sdpa_context_destroy(context);
  }
  if (!all_ok) {
    std::printf("FAILED (errors above %.0e or failed calls)\n", kMaxAbsError);
    return 1;
  }
  return 0;
}
