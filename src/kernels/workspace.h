// Per-thread scratch memory for the kernels: grown on demand, reused across
// calls, so a task never allocates in the steady state. Bounded by the
// largest task a thread has run (block sizes x rows x head dims), never by
// Tq x Tk.
#ifndef SDPA_SRC_KERNELS_WORKSPACE_H_
#define SDPA_SRC_KERNELS_WORKSPACE_H_

#include <cstddef>

namespace sdpa {

// At least `floats` floats, 64-byte aligned, contents undefined; valid until
// the next call on the same thread. Throws std::bad_alloc.
float* ThreadScratch(size_t floats);

}  // namespace sdpa

#endif  // SDPA_SRC_KERNELS_WORKSPACE_H_
