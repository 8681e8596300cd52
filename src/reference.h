// A plain double-precision attention, written directly from the definition in
// include/sdpa/sdpa.h. Slow on purpose: it is the oracle for tests,
// benchmarks and the demo, not a kernel.
#ifndef SDPA_SRC_REFERENCE_H_
#define SDPA_SRC_REFERENCE_H_

#include <vector>

#include "sdpa/sdpa.h"

namespace sdpa {

// Computes attention for already-valid `args` (args.out and args.lse are
// ignored). `out` receives [B, Hq, Tq, Dv] contiguous, `lse` [B, Hq, Tq]
// (natural log; -inf for a query that sees no key, whose output is 0).
void ReferenceAttention(const sdpa_attention_args& args,
                        std::vector<double>* out, std::vector<double>* lse);

}  // namespace sdpa

#endif  // SDPA_SRC_REFERENCE_H_
