// The ISAs libsdpa can run and the kernel compiled for each. Our SDPA_ISA_*
// bits are stable public values; Highway's target bits stay inside src/.
#ifndef SDPA_SRC_DISPATCH_H_
#define SDPA_SRC_DISPATCH_H_

#include <cstdint>

#include "src/kernels/attention.h"

namespace sdpa {

// SDPA_ISA_* bits compiled into this build AND supported by this CPU.
uint64_t AvailableIsas();

// The most capable of `isas` (a set of SDPA_ISA_* bits), or 0 if empty;
// AVX3_ZEN4 only where CpuRunsBf16DotsFast() or nothing else is in `isas`.
uint64_t BestIsa(uint64_t isas);

// Whether this CPU's BF16 dot instruction (AVX512_BF16) outpaces two FMAs,
// which AVX3_ZEN4's BF16 tiles need to gain on AVX3's.
bool CpuRunsBf16DotsFast();

// "AVX3", "AVX2", ... for one SDPA_ISA_* bit; "unknown" otherwise.
const char* IsaName(uint64_t isa);

// The SDPA_ISA_* bit whose name is `name` (case-insensitive), or 0.
uint64_t IsaFromName(const char* name);

// The kernel entry points compiled for one available SDPA_ISA_* bit, or
// nullptr when this build has no code for it.
const KernelTable* KernelsFor(uint64_t isa);

}  // namespace sdpa

#endif  // SDPA_SRC_DISPATCH_H_
