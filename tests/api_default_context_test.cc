// A process whose default context cannot be created: a call with
// context == NULL fails with a message saying why, and explicit contexts
// still work. Its own executable, because the default context is created
// once per process and SDPA_ISA must be wrong before that happens.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>

#include "sdpa/sdpa.h"
#include "tests/test_util.h"

namespace {

using sdpa_testing::F32Tensor;
using sdpa_testing::MakeArgs;

TEST(DefaultContextUnavailable, CallsWithNullContextFailWithTheReason) {
  // Before any sdpa call, while no other thread exists (setenv is not
  // thread-safe).
  ASSERT_EQ(setenv("SDPA_ISA", "NOT_AN_ISA", 1), 0);
  EXPECT_EQ(sdpa_default_context(), nullptr);

  F32Tensor q({1, 1, 2, 4}), k({1, 1, 3, 4}), v({1, 1, 3, 4});
  F32Tensor out({1, 1, 2, 4});
  std::mt19937 rng(5);
  q.FillUniform(rng);
  k.FillUniform(rng);
  v.FillUniform(rng);
  out.FillBuffer(-7.0f);
  const sdpa_attention_args args =
      MakeArgs(q.view(), k.view(), v.view(), out.view());

  EXPECT_EQ(sdpa_attention(nullptr, &args), SDPA_ERROR_INVALID_ARGUMENT);
  const std::string message = sdpa_last_error();
  EXPECT_NE(message.find("default context"), std::string::npos) << message;
  EXPECT_NE(message.find("SDPA_ISA"), std::string::npos) << message;
  EXPECT_TRUE(out.BufferIs(-7.0f));

  // Bad arguments are still reported as such.
  EXPECT_EQ(sdpa_attention(nullptr, nullptr), SDPA_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(sdpa_last_error(), "args is NULL");

  // An explicit ISA does not consult SDPA_ISA.
  sdpa_context_options options{};
  options.struct_size = sizeof(options);
  options.num_threads = 1;
  options.isa = SDPA_ISA_SCALAR;
  sdpa_context* context = nullptr;
  ASSERT_EQ(sdpa_context_create(&options, &context), SDPA_OK)
      << sdpa_last_error();
  EXPECT_EQ(sdpa_attention(context, &args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(sdpa_testing::MatchesReference(args, 1e-5));
  sdpa_context_destroy(context);

  // The default context stays unavailable for the life of the process, and
  // the reason stays the one it failed for.
  ASSERT_EQ(unsetenv("SDPA_ISA"), 0);
  EXPECT_EQ(sdpa_default_context(), nullptr);
  out.FillBuffer(-7.0f);
  EXPECT_EQ(sdpa_attention(nullptr, &args), SDPA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(sdpa_last_error()), message);
  EXPECT_TRUE(out.BufferIs(-7.0f));
}

}  // namespace
