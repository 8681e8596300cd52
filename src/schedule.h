// How one attention call is cut into tasks and run on a context's arena.
#ifndef SDPA_SRC_SCHEDULE_H_
#define SDPA_SRC_SCHEDULE_H_

#include "src/context.h"
#include "src/problem.h"

namespace sdpa {

// Computes the attention described by a validated problem. Throws
// sdpa::Error or std::bad_alloc; writes out/lse only on success.
void RunAttention(sdpa_context& context, const Problem& problem);

}  // namespace sdpa

#endif  // SDPA_SRC_SCHEDULE_H_
