#include "src/schedule.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace sdpa {
namespace {

// Rows (query head x position) per task: enough for several register tiles
// so each K/V block loaded into L2 is reused, few enough for load balance.
// Depends on the shape only, so results never depend on the thread count.
constexpr int64_t kRowsPerTask = 192;

int64_t QueryChunk(const Problem& p) {
  const int64_t group = p.q_heads / p.kv_heads;
  return std::clamp<int64_t>(kRowsPerTask / group, 1, p.q_len);
}

std::vector<Task> CutTasks(const Problem& p) {
  const int64_t chunk = QueryChunk(p);
  std::vector<Task> tasks;
  tasks.reserve(static_cast<size_t>(p.batch * p.kv_heads *
                                    ((p.q_len + chunk - 1) / chunk)));
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t g = 0; g < p.kv_heads; ++g) {
      for (int64_t q0 = 0; q0 < p.q_len; q0 += chunk) {
        Task t;
        t.batch = b;
        t.kv_head = g;
        t.q_begin = q0;
        t.q_end = std::min(p.q_len, q0 + chunk);
        t.kv_begin = 0;
        t.kv_end = p.kv_len;
        tasks.push_back(t);
      }
    }
  }
  return tasks;
}

// How many parts to cut each task's key range into: only when there are
// fewer tasks than threads (decoding), never below one K/V block per part.
int64_t KeySplits(const Problem& p, size_t num_tasks, int32_t threads,
                  int64_t keys_per_block) {
  if (static_cast<int64_t>(num_tasks) >= threads) return 1;
  const int64_t blocks = (p.kv_len + keys_per_block - 1) / keys_per_block;
  const int64_t wanted = (threads + static_cast<int64_t>(num_tasks) - 1) /
                         static_cast<int64_t>(num_tasks);
  return std::max<int64_t>(1, std::min(wanted, blocks));
}

// Runs every task with its keys cut into `splits` parts, each writing a
// normalised partial output and lse, then merges the parts exactly:
//   lse = log sum_s exp(lse_s),  O = sum_s exp(lse_s - lse) O_s.
void RunSplit(sdpa_context& context, const Problem& p,
              const std::vector<Task>& tasks, int64_t splits) {
  const KernelTable& kernels = *context.kernels;
  const int64_t blocks =
      (p.kv_len + kernels.keys_per_block - 1) / kernels.keys_per_block;
  const int64_t blocks_per_split = (blocks + splits - 1) / splits;
  const int64_t keys_per_split = blocks_per_split * kernels.keys_per_block;
  splits = (p.kv_len + keys_per_split - 1) / keys_per_split;

  // Partial results, contiguous [split][B][Hq][Tq][Dv] and [split][B][Hq][Tq].
  const int64_t rows = p.batch * p.q_heads * p.q_len;
  std::vector<float> part_out(static_cast<size_t>(splits * rows * p.value_dim));
  std::vector<float> part_lse(static_cast<size_t>(splits * rows));
  std::vector<Problem> parts(static_cast<size_t>(splits), p);
  for (int64_t s = 0; s < splits; ++s) {
    Problem& part = parts[static_cast<size_t>(s)];
    part.out = part_out.data() + s * rows * p.value_dim;
    part.out_type = ElemType::kF32;
    part.out_strides[3] = 1;
    part.out_strides[2] = p.value_dim;
    part.out_strides[1] = p.q_len * p.value_dim;
    part.out_strides[0] = p.q_heads * p.q_len * p.value_dim;
    part.lse = part_lse.data() + s * rows;
    part.lse_strides[2] = 1;
    part.lse_strides[1] = p.q_len;
    part.lse_strides[0] = p.q_heads * p.q_len;
  }
  const size_t num_items = tasks.size() * static_cast<size_t>(splits);
  tbb::parallel_for(size_t{0}, num_items, [&](size_t item) {
    const int64_t s = static_cast<int64_t>(item % static_cast<size_t>(splits));
    Task t = tasks[item / static_cast<size_t>(splits)];
    t.kv_begin = s * keys_per_split;
    t.kv_end = std::min(p.kv_len, t.kv_begin + keys_per_split);
    kernels.attend(parts[static_cast<size_t>(s)], t);
  });

  const double neg_inf = -std::numeric_limits<double>::infinity();
  tbb::parallel_for(int64_t{0}, rows, [&](int64_t row) {
    const int64_t i = row % p.q_len;
    const int64_t h = (row / p.q_len) % p.q_heads;
    const int64_t b = row / (p.q_len * p.q_heads);
    double max_lse = neg_inf;
    for (int64_t s = 0; s < splits; ++s) {
      const double x = part_lse[static_cast<size_t>(s * rows + row)];
      if (std::isnan(x) || x > max_lse) max_lse = x;
      if (std::isnan(x)) break;
    }
    double total = 0.0;  // sum_s exp(lse_s - max_lse)
    if (max_lse != neg_inf) {
      for (int64_t s = 0; s < splits; ++s) {
        total +=
            std::exp(part_lse[static_cast<size_t>(s * rows + row)] - max_lse);
      }
    }
    const int64_t dst =
        b * p.out_strides[0] + h * p.out_strides[1] + i * p.out_strides[2];
    for (int64_t c = 0; c < p.value_dim; ++c) {
      double acc = 0.0;
      if (max_lse != neg_inf) {
        for (int64_t s = 0; s < splits; ++s) {
          const double w =
              std::exp(part_lse[static_cast<size_t>(s * rows + row)] -
                       max_lse) /
              total;
          // A part that saw no key has weight 0 and output 0: skip it so
          // that nothing in it can matter.
          if (w == 0.0) continue;
          acc +=
              w *
              part_out[static_cast<size_t>((s * rows + row) * p.value_dim + c)];
        }
        if (std::isnan(max_lse)) acc = max_lse;
      }
      StoreElem(p.out, dst + c * p.out_strides[3], p.out_type,
                static_cast<float>(acc));
    }
    if (p.lse != nullptr) {
      const double lse =
          max_lse == neg_inf ? neg_inf : max_lse + std::log(total);
      p.lse[b * p.lse_strides[0] + h * p.lse_strides[1] +
            i * p.lse_strides[2]] = static_cast<float>(lse);
    }
  });
}

}  // namespace

void RunAttention(sdpa_context& context, const Problem& p) {
  const std::vector<Task> tasks = CutTasks(p);
  const KernelTable& kernels = *context.kernels;
  const int64_t splits =
      KeySplits(p, tasks.size(), context.num_threads, kernels.keys_per_block);
  context.arena->execute([&] {
    if (splits > 1) {
      RunSplit(context, p, tasks, splits);
      return;
    }
    tbb::parallel_for(size_t{0}, tasks.size(),
                      [&](size_t i) { kernels.attend(p, tasks[i]); });
  });
}

}  // namespace sdpa
