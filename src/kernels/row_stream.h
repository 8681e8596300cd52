// Rows that a kernel streams from memory and prefetches ahead of its reads.

#ifndef SDPA_KERNELS_ROW_STREAM_H_
#define SDPA_KERNELS_ROW_STREAM_H_

#include <hwy/base.h>
#include <hwy/cache_control.h>
#include <stddef.h>

#include <array>

namespace sdpa {

// Rows a kernel prefetches ahead of its reads: `elems` elements of T from
// each of the rows at `rows` + i * stride (none where rows is null), i <
// count. count may reach past the rows the kernel reads (the next key
// block, where it is the caller's memory), so that block starts warm. T is
// float, or a 16-bit type for K/V that decoding reads in place.
template <class T>
struct RowStreamOf {
  const T* rows = nullptr;
  ptrdiff_t stride = 0;
  size_t elems = 0;
  size_t count = 0;
};
using RowStream = RowStreamOf<float>;

// Pointers to rows base + i * stride, i < kRows, for register tiles that
// name each row (the rest of the array repeats base). Rows past kRows are
// never formed, so no stride is multiplied beyond the rows the caller
// described.
template <int kRows, int kMax = 8>
HWY_INLINE std::array<const float*, kMax> RowPointers(const float* base,
                                                      ptrdiff_t stride) {
  static_assert(1 <= kRows && kRows <= kMax, "kRows in [1, kMax]");
  std::array<const float*, kMax> rows;
  for (int i = 0; i < kMax; ++i) rows[i] = i < kRows ? base + i * stride : base;
  return rows;
}

// The order in which decoding visits the rows of a K (or V) block that it
// streams from memory: i-th visit -> row. Four streams, one from each
// quarter of the block's first num_keys / 4 * 4 rows, taken in turn; the
// rest in order. One sequential stream leaves a core's memory parallelism
// to a single hardware prefetch stream: on the Intel Xeon, one core, 1 GiB
// of K/V, a plain read of the same bytes measured 14.1 GB/s as one stream
// per block and 16.5 as two, and AVX-512 decoding (sdpa_bench, medians of
// 3, two interleaved rounds) went H32 Tq1 Tk32768 12.8-13.0 -> 14.7-14.9
// GB/s, GQA 32:8 Tk32768 10.2-11.1 -> 13.5-14.3, Tk4096 (partly in L3)
// MHA 13.6-16.1 -> 19.6-24.3; two, three and eight streams measured below
// four. docs/design.md has the rest.
// A bijection on [0, num_keys): each row is visited exactly once.
constexpr size_t kDecodeStreams = 4;
HWY_INLINE size_t StreamedRow(size_t visit, size_t num_keys) {
  const size_t striped = num_keys / kDecodeStreams * kDecodeStreams;
  if (visit >= striped) return visit;
  return visit % kDecodeStreams * (striped / kDecodeStreams) +
         visit / kDecodeStreams;
}

// The row of the visit-th visit: StreamedRow order where `streamed`, else
// row order.
HWY_INLINE size_t VisitedRow(size_t visit, size_t num_keys, bool streamed) {
  return streamed ? StreamedRow(visit, num_keys) : visit;
}

constexpr size_t kFloatsPerLine = 64 / sizeof(float);
template <class T>
constexpr size_t kElemsPerLine = 64 / sizeof(T);

// HWY_INLINE (always inline), not `inline`: GCC 12 counts prefetches as free
// of side effects, so a prefetch-only function it does not inline into the
// target-specific caller is deemed const and its calls are deleted, silently
// (02b5c3c..: the one-tile K/V prefetch disappeared from the binaries).

// kToL2: into L2 only, for rows read after the current pass, which keeps L1
// for its own rows (into L1 instead measured the same or up to 15% slower,
// AVX-512 Tq8 decoding); otherwise into L1.
template <bool kToL2 = false, class T>
HWY_INLINE void PrefetchLine(const T* p) {
#if defined(__GNUC__) || defined(__clang__)
  if constexpr (kToL2) {
    __builtin_prefetch(p, /*rw=*/0, /*locality=*/2);
    return;
  }
#endif
  hwy::Prefetch(p);
}

// The cache lines of elements [0, elems) from p (p at a line boundary, or
// its first line counted from p).
template <bool kToL2 = false, class T>
HWY_INLINE void PrefetchElems(const T* p, size_t elems) {
  for (size_t e = 0; e < elems; e += kElemsPerLine<T>) {
    PrefetchLine<kToL2>(p + e);
  }
}

// The cache lines holding elements [begin, end) (clipped to stream.elems)
// of rows [first, first + count) of `stream`; begin is a multiple of
// kElemsPerLine<T>.
template <bool kToL2 = false, class T>
HWY_INLINE void PrefetchRowSpan(const RowStreamOf<T>& stream, size_t first,
                                size_t count, size_t begin, size_t end) {
  if (end > stream.elems) end = stream.elems;
  if (end <= begin) return;
  for (size_t i = first; i < first + count; ++i) {
    PrefetchElems<kToL2>(
        stream.rows + static_cast<ptrdiff_t>(i) * stream.stride + begin,
        end - begin);
  }
}

// The cache line at float e (a multiple of kFloatsPerLine) of each of rows
// [first, first + count) of `stream`, if e is within its rows: one line per
// row at a time, for kernels that spread their prefetches over a loop.
HWY_INLINE void PrefetchRowsLine(const RowStream& stream, size_t first,
                                 size_t count, size_t e) {
  if (e >= stream.elems) return;
  const float* p =
      stream.rows + static_cast<ptrdiff_t>(first) * stream.stride + e;
  for (size_t i = 0; i < count; ++i) {
    PrefetchLine(p + static_cast<ptrdiff_t>(i) * stream.stride);
  }
}

// Every cache line of rows [first, first + count) of `stream`.
template <bool kToL2 = false, class T>
HWY_INLINE void PrefetchRows(const RowStreamOf<T>& stream, size_t first,
                             size_t count) {
  PrefetchRowSpan<kToL2>(stream, first, count, 0, stream.elems);
}

}  // namespace sdpa

#endif  // SDPA_KERNELS_ROW_STREAM_H_
