// sdpa_context: a oneTBB task arena (creating one per call would cost ~220 us)
// and the kernel table of one ISA.
#ifndef SDPA_SRC_CONTEXT_H_
#define SDPA_SRC_CONTEXT_H_

#include <tbb/task_arena.h>

#include <cstdint>
#include <memory>

#include "src/kernels/attention.h"

struct sdpa_context {
  int32_t num_threads = 1;
  uint64_t isa = 0;  // one SDPA_ISA_* bit
  const sdpa::KernelTable* kernels = nullptr;
  std::unique_ptr<tbb::task_arena> arena;
};

namespace sdpa {

// num_threads: 0 = all hardware threads. isa: 0 = best available (capped by
// the SDPA_ISA environment variable when set), else one SDPA_ISA_* bit.
// Throws sdpa::Error for bad or unsupported values, std::bad_alloc.
std::unique_ptr<sdpa_context> CreateContext(int32_t num_threads, uint64_t isa);

// The process-wide default context, created on first use; never destroyed.
sdpa_context* DefaultContext();

}  // namespace sdpa

#endif  // SDPA_SRC_CONTEXT_H_
