#include "src/tensor_extent.h"

#include <utility>

namespace sdpa {

std::optional<ElementOffsets> ElementOffsetRange(const int64_t shape[4],
                                                 const int64_t strides[4]) {
  ElementOffsets range;
  for (int d = 0; d < 4; ++d) {
    if (shape[d] <= 1) continue;
    int64_t reach = 0;  // offset of the last index along d
    if (__builtin_mul_overflow(shape[d] - 1, strides[d], &reach)) {
      return std::nullopt;
    }
    int64_t& end = reach < 0 ? range.min : range.max;
    if (__builtin_add_overflow(end, reach, &end)) return std::nullopt;
  }
  return range;
}

std::optional<ByteSpan> ByteSpanOf(const void* data, ElementOffsets offsets,
                                   size_t element_bytes) {
  const int64_t size = static_cast<int64_t>(element_bytes);
  int64_t first_byte = 0;
  int64_t last_byte = 0;
  if (__builtin_mul_overflow(offsets.min, size, &first_byte) ||
      __builtin_mul_overflow(offsets.max, size, &last_byte) ||
      __builtin_add_overflow(last_byte, size - 1, &last_byte)) {
    return std::nullopt;
  }
  // The builtins check the exact mathematical sum against the result type,
  // so an address below 0 or past UINTPTR_MAX is caught for mixed signs too.
  const uintptr_t base = reinterpret_cast<uintptr_t>(data);
  ByteSpan span;
  if (__builtin_add_overflow(base, first_byte, &span.first) ||
      __builtin_add_overflow(base, last_byte, &span.last)) {
    return std::nullopt;
  }
  return span;
}

bool SpansOverlap(ByteSpan a, ByteSpan b) {
  return a.first <= b.last && b.first <= a.last;
}

bool ElementsAreDistinct(const int64_t shape[4], const int64_t strides[4]) {
  // (|stride|, size) of the dimensions that have more than one index. Kept
  // unsigned: |INT64_MIN| does not fit in int64.
  std::pair<uint64_t, uint64_t> dims[4];
  int count = 0;
  for (int d = 0; d < 4; ++d) {
    if (shape[d] <= 1) continue;
    const uint64_t magnitude =
        strides[d] < 0 ? uint64_t{0} - static_cast<uint64_t>(strides[d])
                       : static_cast<uint64_t>(strides[d]);
    dims[count++] = {magnitude, static_cast<uint64_t>(shape[d])};
  }
  // Insertion sort by |stride|: four elements at most (and GCC 12 reports
  // a false -Warray-bounds inside std::sort on an array this small).
  for (int i = 1; i < count; ++i) {
    for (int j = i; j > 0 && dims[j] < dims[j - 1]; --j) {
      std::swap(dims[j], dims[j - 1]);
    }
  }
  uint64_t spanned = 0;  // largest offset difference the smaller dims reach
  for (int i = 0; i < count; ++i) {
    const auto [stride, size] = dims[i];
    if (stride <= spanned) return false;  // stride 0 included
    uint64_t reach = 0;
    if (__builtin_mul_overflow(size - 1, stride, &reach) ||
        __builtin_add_overflow(spanned, reach, &spanned)) {
      return false;
    }
  }
  return true;
}

}  // namespace sdpa
