// C API inputs the fuzzer (fuzz/attention_fuzzer.cc) found mishandled, kept
// as regression tests: thread counts oneTBB cannot hold, and statuses
// outside the enum passed from C.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sdpa/sdpa.h"

extern "C" const char* robustness_status_string(int status);

namespace {

sdpa_status CreateWithThreads(int32_t threads, sdpa_context** context) {
  sdpa_context_options options{};
  options.struct_size = sizeof(options);
  options.num_threads = threads;
  return sdpa_context_create(&options, context);
}

// Found by the fuzzer: a oneTBB arena of more than 65536 slots crashes on
// first use (2^31 - 1) or when destroyed (65537 .. 10^6). More than 4096
// threads are refused up front.
TEST(RobustnessApi, ThreadCountsAbove4096AreRefused) {
  for (int32_t threads :
       {4097, 65536, 65537, 1000000, std::numeric_limits<int32_t>::max()}) {
    sdpa_context* context = reinterpret_cast<sdpa_context*>(0x1);
    EXPECT_EQ(CreateWithThreads(threads, &context), SDPA_ERROR_INVALID_ARGUMENT)
        << threads;
    EXPECT_EQ(context, reinterpret_cast<sdpa_context*>(0x1));
    const std::string message = sdpa_last_error();
    EXPECT_NE(
        message.find("options->num_threads is " + std::to_string(threads)),
        std::string::npos)
        << message;
    EXPECT_NE(message.find("4096"), std::string::npos) << message;
  }
}

// The largest accepted count works: create, compute, destroy.
TEST(RobustnessApi, FourThousandNinetySixThreadsWork) {
  sdpa_context* context = nullptr;
  ASSERT_EQ(CreateWithThreads(4096, &context), SDPA_OK) << sdpa_last_error();
  EXPECT_EQ(sdpa_context_num_threads(context), 4096);
  // Two queries attending to the same two keys; V rows 1 and 3 with equal
  // scores (Q·K = 0) give 2.
  std::vector<float> q(2 * 4, 0.0f), k(2 * 4, 1.0f),
      v = {1, 1, 1, 1, 3, 3, 3, 3};
  std::vector<float> out(2 * 4, -1.0f);
  auto view = [](std::vector<float>& data) {
    sdpa_tensor t{};
    t.data = data.data();
    t.dtype = SDPA_DTYPE_F32;
    const int64_t shape[4] = {1, 1, 2, 4}, strides[4] = {8, 8, 4, 1};
    for (int d = 0; d < 4; ++d)
      t.shape[d] = shape[d], t.strides[d] = strides[d];
    return t;
  };
  sdpa_tensor tq = view(q), tk = view(k), tv = view(v), to = view(out);
  sdpa_attention_args args{};
  args.struct_size = sizeof(args);
  args.q = &tq, args.k = &tk, args.v = &tv, args.out = &to;
  args.window_left = args.window_right = -1;
  ASSERT_EQ(sdpa_attention(context, &args), SDPA_OK) << sdpa_last_error();
  for (float x : out) EXPECT_EQ(x, 2.0f);
  sdpa_context_destroy(context);
}

// Found by the fuzzer (clang UBSan's enum check): sdpa_status_string read
// its argument as the C++ enum, which is undefined for values a C caller may
// pass. Every int gets a string. (GCC's UBSan does not check this load;
// clang's, as in scripts/fuzz.sh, does.)
TEST(RobustnessApi, StatusStringTakesAnyIntFromC) {
  EXPECT_STREQ(robustness_status_string(0), "success");
  EXPECT_STREQ(robustness_status_string(3), "out of memory");
  for (int status : {5, 7, 8, 100, 16640, -1, std::numeric_limits<int>::min(),
                     std::numeric_limits<int>::max()}) {
    EXPECT_STREQ(robustness_status_string(status), "unknown status") << status;
  }
}

}  // namespace
