#include "src/schedule.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <vector>

namespace sdpa {

void RunAttention(sdpa_context& context, const Problem& p) {
  std::vector<Task> tasks;
  const int64_t q_chunk = 64;
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t g = 0; g < p.kv_heads; ++g) {
      for (int64_t q0 = 0; q0 < p.q_len; q0 += q_chunk) {
        Task t;
        t.batch = b;
        t.kv_head = g;
        t.q_begin = q0;
        t.q_end = std::min(p.q_len, q0 + q_chunk);
        t.kv_begin = 0;
        t.kv_end = p.kv_len;
        tasks.push_back(t);
      }
    }
  }
  const KernelTable& kernels = *context.kernels;
  context.arena->execute([&] {
    tbb::parallel_for(size_t{0}, tasks.size(),
                      [&](size_t i) { kernels.attend(p, tasks[i]); });
  });
}

}  // namespace sdpa
