#include "src/context.h"

#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "src/dispatch.h"
#include "src/error.h"

namespace sdpa {
namespace {

// "AVX3_ZEN4, AVX3, ..., SCALAR": the names of `isas`, most capable first.
std::string IsaNames(uint64_t isas) {
  std::string names;
  for (int bit = 63; bit >= 0; --bit) {
    const uint64_t isa = uint64_t{1} << bit;
    if ((isas & isa) == 0) continue;
    if (!names.empty()) names += ", ";
    names += IsaName(isa);
  }
  return names;
}

// The ISA a context gets when its options ask for none: the best available,
// capped by SDPA_ISA (demos and benchmarks compare ISAs through it).
uint64_t DefaultIsa() {
  const uint64_t available = AvailableIsas();
  const char* env = std::getenv("SDPA_ISA");
  if (env != nullptr && *env != '\0') {
    const uint64_t wanted = IsaFromName(env);
    if (wanted == 0) {
      throw Error(SDPA_ERROR_INVALID_ARGUMENT,
                  std::string("environment variable SDPA_ISA=\"") + env +
                      "\" is not an ISA name (this CPU and build run " +
                      IsaNames(available) + ")");
    }
    if ((available & wanted) == 0) {
      throw Error(SDPA_ERROR_UNSUPPORTED,
                  std::string("environment variable SDPA_ISA=") + env +
                      ": this CPU or build cannot run that ISA (it runs " +
                      IsaNames(available) + ")");
    }
    return wanted;
  }
  return BestIsa(available);
}

}  // namespace

std::unique_ptr<sdpa_context> CreateContext(int32_t num_threads, uint64_t isa) {
  if (num_threads < 0) {
    throw Error(SDPA_ERROR_INVALID_ARGUMENT,
                "options->num_threads is " + std::to_string(num_threads) +
                    "; it must be 0 (all hardware threads) or positive");
  }
  if (isa != 0 && (isa & (isa - 1)) != 0) {
    throw Error(SDPA_ERROR_INVALID_ARGUMENT,
                "options->isa must be 0 or exactly one SDPA_ISA_* bit");
  }
  if (isa != 0 && std::string(IsaName(isa)) == "unknown") {
    throw Error(SDPA_ERROR_INVALID_ARGUMENT,
                "options->isa is not an SDPA_ISA_* bit");
  }
  if (isa != 0 && (AvailableIsas() & isa) == 0) {
    throw Error(SDPA_ERROR_UNSUPPORTED,
                std::string("options->isa asks for ") + IsaName(isa) +
                    ", which this CPU or build cannot run; see "
                    "sdpa_available_isas()");
  }
  auto context = std::make_unique<sdpa_context>();
  context->isa = isa != 0 ? isa : DefaultIsa();
  context->kernels = KernelsFor(context->isa);
  if (context->kernels == nullptr) {
    throw Error(SDPA_ERROR_INTERNAL, "no kernel compiled for the chosen ISA");
  }
  int32_t threads = num_threads;
  if (threads == 0) {
    threads = static_cast<int32_t>(std::thread::hardware_concurrency());
    if (threads < 1) threads = 1;
  }
  context->num_threads = threads;
  context->arena = std::make_unique<tbb::task_arena>(threads);
  return context;
}

sdpa_context* DefaultContext() {
  static sdpa_context* context = []() -> sdpa_context* {
    try {
      return CreateContext(0, 0).release();
    } catch (...) {
      return nullptr;
    }
  }();
  return context;
}

}  // namespace sdpa
