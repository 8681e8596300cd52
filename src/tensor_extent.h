// The memory a strided 4-D view spans, computed with overflow checks, and the
// aliasing tests the C boundary needs before it lets a kernel write. Pure
// functions: the caller turns a failed check into a message.
#ifndef SDPA_SRC_TENSOR_EXTENT_H_
#define SDPA_SRC_TENSOR_EXTENT_H_

#include <cstddef>
#include <cstdint>
#include <optional>

namespace sdpa {

// Smallest and largest element offset (in elements, relative to data) that a
// view addresses. Negative strides make `min` negative.
struct ElementOffsets {
  int64_t min = 0;
  int64_t max = 0;
};

// The bytes a view touches, both ends inclusive, as addresses.
struct ByteSpan {
  uintptr_t first = 0;
  uintptr_t last = 0;
};

// The offset range of a view with every shape[d] >= 1. A dimension of size 1
// contributes nothing whatever its stride (only index 0 is ever used).
// nullopt when some offset does not fit in int64.
std::optional<ElementOffsets> ElementOffsetRange(const int64_t shape[4],
                                                 const int64_t strides[4]);

// The addresses of the bytes from element `offsets.min` to the last byte of
// element `offsets.max`. nullopt when a byte offset does not fit in int64 or
// an address falls outside [0, UINTPTR_MAX].
std::optional<ByteSpan> ByteSpanOf(const void* data, ElementOffsets offsets,
                                   size_t element_bytes);

bool SpansOverlap(ByteSpan a, ByteSpan b);

// True when no two different indices of the view map to the same element.
// Conservative (sufficient, not necessary): the dimensions of size > 1,
// sorted by |stride|, must each step over everything the smaller ones span,
// i.e. |stride| > sum of (size - 1) * |stride| of the smaller ones. Every
// dense layout (BHSD, BSHD, padded, reversed, permuted) passes; exotic
// interleavings that happen not to collide are refused.
bool ElementsAreDistinct(const int64_t shape[4], const int64_t strides[4]);

}  // namespace sdpa

#endif  // SDPA_SRC_TENSOR_EXTENT_H_
