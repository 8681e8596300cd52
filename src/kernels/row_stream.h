// Rows that a kernel streams from memory and prefetches ahead of its reads.

#ifndef SDPA_KERNELS_ROW_STREAM_H_
#define SDPA_KERNELS_ROW_STREAM_H_

#include <hwy/cache_control.h>
#include <stddef.h>

namespace sdpa {

// Rows a kernel prefetches ahead of its reads: `floats` floats from each of
// the rows at `rows` + i * stride (none where rows is null).
struct RowStream {
  const float* rows = nullptr;
  ptrdiff_t stride = 0;
  size_t floats = 0;
};

// Every cache line of rows [first, first + count) of `stream`.
inline void PrefetchRows(const RowStream& stream, size_t first, size_t count) {
  for (size_t i = first; i < first + count; ++i) {
    const float* row = stream.rows + static_cast<ptrdiff_t>(i) * stream.stride;
    for (size_t e = 0; e < stream.floats; e += 64 / sizeof(float)) {
      hwy::Prefetch(row + e);
    }
  }
}

}  // namespace sdpa

#endif  // SDPA_KERNELS_ROW_STREAM_H_
