// The per-ISA attention kernel's entry points, as seen by the scheduler.
#ifndef SDPA_SRC_KERNELS_ATTENTION_H_
#define SDPA_SRC_KERNELS_ATTENTION_H_

#include <cstddef>
#include <cstdint>

#include "src/problem.h"

namespace sdpa {

// One unit of work: every query head of KV head `kv_head` in batch `batch`,
// for query positions [q_begin, q_end), against keys [kv_begin, kv_end).
// Rows of the output (and lse) outside the task are never touched.
struct Task {
  int64_t batch = 0;
  int64_t kv_head = 0;
  int64_t q_begin = 0;
  int64_t q_end = 0;
  int64_t kv_begin = 0;
  int64_t kv_end = 0;
};

struct KernelTable {
  // Computes the normalised output rows of `task` (and lse when
  // problem.lse != nullptr) from keys [kv_begin, kv_end) only. Throws
  // std::bad_alloc if its workspace cannot be allocated.
  void (*attend)(const Problem& problem, const Task& task);
  // Lanes of one f32 vector on this ISA (for scheduling and tests).
  int64_t lanes;
  // Keys per K/V block. A task's kv_begin must be a multiple of it so that
  // block boundaries (and thus results) do not depend on how keys are split.
  int64_t keys_per_block;
  // y[i] = the softmax's fast 2^x[i], i < n: its contract is tested per ISA.
  void (*exp2)(const float* x, float* y, size_t n);
};

}  // namespace sdpa

#endif  // SDPA_SRC_KERNELS_ATTENTION_H_
