// The order in which decoding visits a block's K and V rows (StreamedRow):
// every row exactly once, in four ascending streams over the block's
// quarters, the rows past the last multiple of four in order. Kernel tests
// check the attention results; this pins the order itself, on the block
// sizes decoding meets (512 and its split-KV and last-block remainders).
#include "src/kernels/row_stream.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

namespace sdpa_test {
namespace {

TEST(StreamedRow, VisitsEveryRowOnce) {
  for (size_t n = 0; n <= 1030; ++n) {
    std::vector<int> visits(n, 0);
    for (size_t i = 0; i < n; ++i) {
      const size_t row = sdpa::StreamedRow(i, n);
      ASSERT_LT(row, n) << "visit " << i << " of " << n;
      ++visits[row];
    }
    for (size_t row = 0; row < n; ++row) {
      ASSERT_EQ(visits[row], 1) << "row " << row << " of " << n;
    }
  }
}

TEST(StreamedRow, FourStreamsThenTheRest) {
  ASSERT_EQ(sdpa::kDecodeStreams, 4u);
  // 10 rows: quarters of 2 over the first 8, then rows 8 and 9.
  const size_t expected[] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 9};
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(sdpa::StreamedRow(i, 10), expected[i]) << "visit " << i;
  }
  // A 512-row block: each stream steps by one row, the streams 128 apart.
  for (size_t i = 0; i + 4 < 512; ++i) {
    EXPECT_EQ(sdpa::StreamedRow(i + 4, 512), sdpa::StreamedRow(i, 512) + 1);
    EXPECT_EQ(sdpa::StreamedRow(i, 512) / 128, i % 4);
  }
  // Fewer than four rows: in order.
  for (size_t n = 1; n < 4; ++n) {
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(sdpa::StreamedRow(i, n), i);
  }
}

}  // namespace
}  // namespace sdpa_test
