// The extent and aliasing arithmetic the validator relies on, at its edges.
#include "src/tensor_extent.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace {

using sdpa::ByteSpanOf;
using sdpa::ElementOffsetRange;
using sdpa::ElementOffsets;
using sdpa::ElementsAreDistinct;
using sdpa::SpansOverlap;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(ElementOffsetRange, MixedSignsAndIgnoredSizeOneStrides) {
  const int64_t shape[4] = {2, 1, 3, 4};
  const int64_t strides[4] = {100, kMax, -10, 1};  // kMax: size 1, unused
  const auto range = ElementOffsetRange(shape, strides);
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->min, -20);
  EXPECT_EQ(range->max, 100 + 3);
}

TEST(ElementOffsetRange, OverflowOfATermAndOfTheSum) {
  const int64_t shape[4] = {3, 1, 1, 2};
  const int64_t term[4] = {kMax / 2 + 1, 0, 0, 1};
  EXPECT_FALSE(ElementOffsetRange(shape, term).has_value());
  const int64_t sum[4] = {kMax / 2, 0, 0, 2};  // 2*(kMax/2) + 2 > kMax
  EXPECT_FALSE(ElementOffsetRange(shape, sum).has_value());
  const int64_t fits[4] = {kMax / 2, 0, 0, 1};
  EXPECT_TRUE(ElementOffsetRange(shape, fits).has_value());
  const int64_t negative[4] = {kMin / 2, 0, 0, -1};  // kMin - 1
  EXPECT_FALSE(ElementOffsetRange(shape, negative).has_value());
}

TEST(ByteSpanOf, CoversTheLastByteOfTheLastElement) {
  const auto span =
      ByteSpanOf(reinterpret_cast<void*>(uintptr_t{1000}), {-2, 3}, 4);
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->first, 992u);
  EXPECT_EQ(span->last, 1015u);
}

TEST(ByteSpanOf, RefusesAddressesOutsideTheAddressSpace) {
  const void* low = reinterpret_cast<void*>(uintptr_t{8});
  EXPECT_TRUE(ByteSpanOf(low, {-2, 0}, 4).has_value());
  EXPECT_FALSE(ByteSpanOf(low, {-3, 0}, 4).has_value());
  const uintptr_t top = std::numeric_limits<uintptr_t>::max();
  const void* high = reinterpret_cast<void*>(top - 7);
  EXPECT_TRUE(ByteSpanOf(high, {0, 1}, 4).has_value());
  EXPECT_FALSE(ByteSpanOf(high, {0, 2}, 4).has_value());
  EXPECT_FALSE(ByteSpanOf(low, {0, kMax / 4 + 1}, 4).has_value());
}

TEST(SpansOverlap, InclusiveEnds) {
  EXPECT_TRUE(SpansOverlap({0, 10}, {10, 20}));
  EXPECT_TRUE(SpansOverlap({10, 20}, {0, 10}));
  EXPECT_TRUE(SpansOverlap({0, 100}, {40, 50}));
  EXPECT_FALSE(SpansOverlap({0, 9}, {10, 20}));
  EXPECT_FALSE(SpansOverlap({21, 30}, {10, 20}));
}

TEST(ElementsAreDistinct, DenseLayoutsInAnyOrderOrDirection) {
  const int64_t shape[4] = {2, 3, 4, 5};
  const int64_t bhsd[4] = {60, 20, 5, 1};
  const int64_t bshd[4] = {60, 5, 15, 1};
  const int64_t reversed[4] = {60, 20, -5, 1};
  const int64_t padded[4] = {100, 30, 7, 1};
  const int64_t transposed[4] = {1, 2, 6, 24};
  for (const auto* strides : {bhsd, bshd, reversed, padded, transposed}) {
    EXPECT_TRUE(ElementsAreDistinct(shape, strides));
  }
}

TEST(ElementsAreDistinct, AliasingLayouts) {
  const int64_t shape[4] = {2, 3, 4, 5};
  const int64_t zero[4] = {60, 0, 5, 1};
  const int64_t rows_overlap[4] = {60, 20, 4, 1};  // row s+1 starts in row s
  const int64_t heads_alias_batch[4] = {20, 20, 5, 1};
  const int64_t negative_overlap[4] = {60, 20, -3, 1};
  for (const auto* strides :
       {zero, rows_overlap, heads_alias_batch, negative_overlap}) {
    EXPECT_FALSE(ElementsAreDistinct(shape, strides));
  }
}

TEST(ElementsAreDistinct, SizeOneDimsAndExtremeStrides) {
  const int64_t shape[4] = {1, 1, 2, 1};
  const int64_t strides[4] = {0, 0, kMin, 0};  // |kMin| is not an int64
  EXPECT_TRUE(ElementsAreDistinct(shape, strides));
  const int64_t all_ones[4] = {1, 1, 1, 1};
  const int64_t zeros[4] = {0, 0, 0, 0};
  EXPECT_TRUE(ElementsAreDistinct(all_ones, zeros));
}

}  // namespace
