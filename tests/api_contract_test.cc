// The C API around sdpa_attention: contexts, ISAs, status strings, version
// and the last-error convention. Arguments of sdpa_attention itself are
// covered by api_args_test.cc.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "sdpa/sdpa.h"
#include "src/dispatch.h"
#include "tests/test_util.h"

namespace {

using sdpa_testing::F32Tensor;
using sdpa_testing::MakeArgs;
using sdpa_testing::MatchesReference;

constexpr uint64_t kAllIsaBits[] = {
    SDPA_ISA_SCALAR, SDPA_ISA_SSSE3,   SDPA_ISA_SSE4,      SDPA_ISA_AVX2,
    SDPA_ISA_AVX3,   SDPA_ISA_AVX3_DL, SDPA_ISA_AVX3_ZEN4, SDPA_ISA_NEON,
    SDPA_ISA_SVE,    SDPA_ISA_SVE2,    SDPA_ISA_SVE_256,   SDPA_ISA_SVE2_128};

// A pointer value no successful or failed create would leave behind.
sdpa_context* Poison() {
  return reinterpret_cast<sdpa_context*>(uintptr_t{0xdead0});
}

sdpa_context_options Options(int32_t num_threads, uint64_t isa) {
  sdpa_context_options options{};
  options.struct_size = sizeof(options);
  options.num_threads = num_threads;
  options.isa = isa;
  return options;
}

bool IsOneBit(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

// Sets an environment variable for one scope. Only for single-threaded
// moments of a test: setenv is not thread-safe.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_old_ = old != nullptr;
    if (had_old_) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_old_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool had_old_ = false;
  std::string old_;
};

TEST(StatusString, EveryStatus) {
  EXPECT_STREQ(sdpa_status_string(SDPA_OK), "success");
  EXPECT_STREQ(sdpa_status_string(SDPA_ERROR_INVALID_ARGUMENT),
               "invalid argument");
  EXPECT_STREQ(sdpa_status_string(SDPA_ERROR_UNSUPPORTED), "unsupported");
  EXPECT_STREQ(sdpa_status_string(SDPA_ERROR_OUT_OF_MEMORY), "out of memory");
  EXPECT_STREQ(sdpa_status_string(SDPA_ERROR_INTERNAL), "internal error");
  // 7 is inside the value range of the enum, so the cast is defined.
  EXPECT_STREQ(sdpa_status_string(static_cast<sdpa_status>(7)),
               "unknown status");
}

TEST(Version, MatchesTheHeader) {
  const uint32_t version = sdpa_version();
  EXPECT_EQ(version >> 16, uint32_t{SDPA_VERSION_MAJOR});
  EXPECT_EQ((version >> 8) & 0xff, uint32_t{SDPA_VERSION_MINOR});
  EXPECT_EQ(version & 0xff, uint32_t{SDPA_VERSION_PATCH});
  EXPECT_EQ(version, 0x000200u);  // 0.2.0: update with the version
}

TEST(IsaName, EveryBit) {
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_SCALAR), "SCALAR");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_SSSE3), "SSSE3");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_SSE4), "SSE4");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_AVX2), "AVX2");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_AVX3), "AVX3");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_AVX3_DL), "AVX3_DL");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_AVX3_ZEN4), "AVX3_ZEN4");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_NEON), "NEON");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_SVE), "SVE");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_SVE2), "SVE2");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_SVE_256), "SVE_256");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_SVE2_128), "SVE2_128");
}

TEST(IsaName, UnknownForAnythingElse) {
  EXPECT_STREQ(sdpa_isa_name(0), "unknown");
  EXPECT_STREQ(sdpa_isa_name(SDPA_ISA_SCALAR | SDPA_ISA_AVX2), "unknown");
  EXPECT_STREQ(sdpa_isa_name(uint64_t{1} << 40), "unknown");
  EXPECT_STREQ(sdpa_isa_name(~uint64_t{0}), "unknown");
}

TEST(AvailableIsas, NonEmptyWithScalarAndOnlyKnownBits) {
  const uint64_t available = sdpa_available_isas();
  EXPECT_NE(available & SDPA_ISA_SCALAR, 0u);
  uint64_t known = 0;
  for (uint64_t bit : kAllIsaBits) known |= bit;
  EXPECT_EQ(available & ~known, 0u);
}

TEST(Context, NullOptionsGiveTheBestIsaAndAllThreads) {
  sdpa_context* context = nullptr;
  ASSERT_EQ(sdpa_context_create(nullptr, &context), SDPA_OK)
      << sdpa_last_error();
  EXPECT_STREQ(sdpa_last_error(), "");
  const uint64_t isa = sdpa_context_isa(context);
  EXPECT_TRUE(IsOneBit(isa));
  EXPECT_NE(isa & sdpa_available_isas(), 0u);
  // The best one: no available bit is listed as more capable (higher bits
  // are more capable within an architecture family here), but AVX3_ZEN4 on
  // a CPU whose BF16 dot products are slower than its FMAs.
  if (std::getenv("SDPA_ISA") == nullptr) {
    const uint64_t x86 = SDPA_ISA_SSSE3 | SDPA_ISA_SSE4 | SDPA_ISA_AVX2 |
                         SDPA_ISA_AVX3 | SDPA_ISA_AVX3_DL | SDPA_ISA_AVX3_ZEN4;
    if (isa & x86) {
      const uint64_t above = sdpa_available_isas() & x86 & ~((isa << 1) - 1);
      const uint64_t passed_over =
          sdpa::CpuRunsBf16DotsFast() ? 0 : SDPA_ISA_AVX3_ZEN4;
      EXPECT_EQ(above & ~passed_over, 0u) << sdpa_isa_name(isa);
    }
  }
  const int32_t threads = sdpa_context_num_threads(context);
  const int32_t hardware =
      static_cast<int32_t>(std::thread::hardware_concurrency());
  EXPECT_EQ(threads, hardware > 0 ? hardware : 1);
  sdpa_context_destroy(context);
}

// Every available ISA makes a context that reports it and computes right.
TEST(Context, EachAvailableIsa) {
  F32Tensor q({1, 2, 5, 8}), k({1, 1, 7, 8}), v({1, 1, 7, 3});
  std::mt19937 rng(3);
  q.FillUniform(rng);
  k.FillUniform(rng);
  v.FillUniform(rng);
  const uint64_t available = sdpa_available_isas();
  int tried = 0;
  for (uint64_t isa : kAllIsaBits) {
    if ((available & isa) == 0) continue;
    SCOPED_TRACE(sdpa_isa_name(isa));
    ++tried;
    const sdpa_context_options options = Options(2, isa);
    sdpa_context* context = Poison();
    ASSERT_EQ(sdpa_context_create(&options, &context), SDPA_OK)
        << sdpa_last_error();
    EXPECT_EQ(sdpa_context_isa(context), isa);
    EXPECT_EQ(sdpa_context_num_threads(context), 2);
    F32Tensor out({1, 2, 5, 3});
    const sdpa_attention_args args =
        MakeArgs(q.view(), k.view(), v.view(), out.view());
    ASSERT_EQ(sdpa_attention(context, &args), SDPA_OK) << sdpa_last_error();
    EXPECT_TRUE(MatchesReference(args, 1e-5));
    sdpa_context_destroy(context);
  }
  EXPECT_GE(tried, 1);
}

TEST(Context, IsaTheCpuLacksIsUnsupported) {
  const uint64_t available = sdpa_available_isas();
  for (uint64_t isa : kAllIsaBits) {
    if (available & isa) continue;
    SCOPED_TRACE(sdpa_isa_name(isa));
    const sdpa_context_options options = Options(1, isa);
    sdpa_context* context = Poison();
    EXPECT_EQ(sdpa_context_create(&options, &context), SDPA_ERROR_UNSUPPORTED);
    EXPECT_NE(std::string(sdpa_last_error()).find("options->isa"),
              std::string::npos)
        << sdpa_last_error();
    EXPECT_EQ(context, Poison());
    return;
  }
  GTEST_SKIP() << "this CPU runs every ISA sdpa.h names";
}

TEST(Context, IsaThatIsNotOneKnownBitIsInvalid) {
  for (uint64_t isa : {SDPA_ISA_SCALAR | SDPA_ISA_AVX2, uint64_t{1} << 40,
                       uint64_t{1} << 63}) {
    SCOPED_TRACE(isa);
    const sdpa_context_options options = Options(1, isa);
    sdpa_context* context = Poison();
    EXPECT_EQ(sdpa_context_create(&options, &context),
              SDPA_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(sdpa_last_error()).find("options->isa"),
              std::string::npos)
        << sdpa_last_error();
    EXPECT_EQ(context, Poison());
  }
}

TEST(Context, NegativeThreadsIsInvalid) {
  const sdpa_context_options options = Options(-1, 0);
  sdpa_context* context = Poison();
  EXPECT_EQ(sdpa_context_create(&options, &context),
            SDPA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sdpa_last_error()).find("options->num_threads"),
            std::string::npos)
      << sdpa_last_error();
  EXPECT_EQ(context, Poison());
}

TEST(Context, ExplicitThreadCount) {
  const sdpa_context_options options = Options(3, SDPA_ISA_SCALAR);
  sdpa_context* context = nullptr;
  ASSERT_EQ(sdpa_context_create(&options, &context), SDPA_OK);
  EXPECT_EQ(sdpa_context_num_threads(context), 3);
  sdpa_context_destroy(context);
}

TEST(Context, SmallStructSizeIsInvalid) {
  sdpa_context_options options = Options(1, 0);
  options.struct_size = sizeof(options) - 1;
  sdpa_context* context = Poison();
  EXPECT_EQ(sdpa_context_create(&options, &context),
            SDPA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sdpa_last_error()).find("options->struct_size"),
            std::string::npos)
      << sdpa_last_error();
  EXPECT_EQ(context, Poison());
}

TEST(Context, NullOutContextIsInvalid) {
  EXPECT_EQ(sdpa_context_create(nullptr, nullptr), SDPA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sdpa_last_error()).find("out_context"),
            std::string::npos)
      << sdpa_last_error();
}

TEST(Context, NullIsHarmless) {
  sdpa_context_destroy(nullptr);
  EXPECT_EQ(sdpa_context_isa(nullptr), 0u);
  EXPECT_EQ(sdpa_context_num_threads(nullptr), 0);
}

TEST(Context, DefaultIsOneLivingContext) {
  sdpa_context* context = sdpa_default_context();
  ASSERT_NE(context, nullptr);
  EXPECT_EQ(sdpa_default_context(), context);
  EXPECT_NE(sdpa_context_isa(context) & sdpa_available_isas(), 0u);
  EXPECT_GE(sdpa_context_num_threads(context), 1);
}

TEST(Context, SdpaIsaEnvironmentCapsTheDefaultIsa) {
  {
    ScopedEnv env("SDPA_ISA", "scalar");
    sdpa_context* context = nullptr;
    ASSERT_EQ(sdpa_context_create(nullptr, &context), SDPA_OK)
        << sdpa_last_error();
    EXPECT_EQ(sdpa_context_isa(context), SDPA_ISA_SCALAR);
    sdpa_context_destroy(context);
  }
  {
    ScopedEnv env("SDPA_ISA", "NOT_AN_ISA");
    sdpa_context* context = Poison();
    EXPECT_EQ(sdpa_context_create(nullptr, &context),
              SDPA_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(sdpa_last_error()).find("SDPA_ISA"),
              std::string::npos)
        << sdpa_last_error();
    EXPECT_EQ(context, Poison());
  }
}

// Only calls that return a status touch the last error, so it can be read
// after formatting the status in any order.
TEST(LastError, QueriesDoNotResetIt) {
  ASSERT_EQ(sdpa_context_create(nullptr, nullptr), SDPA_ERROR_INVALID_ARGUMENT);
  const std::string message = sdpa_last_error();
  ASSERT_NE(message, "");
  sdpa_status_string(SDPA_ERROR_INVALID_ARGUMENT);
  sdpa_isa_name(SDPA_ISA_SCALAR);
  sdpa_available_isas();
  sdpa_version();
  sdpa_context_isa(nullptr);
  sdpa_default_context();
  EXPECT_EQ(sdpa_last_error(), message);
}

TEST(LastError, EmptyAfterSuccess) {
  ASSERT_EQ(sdpa_context_create(nullptr, nullptr), SDPA_ERROR_INVALID_ARGUMENT);
  sdpa_context* context = nullptr;
  ASSERT_EQ(sdpa_context_create(nullptr, &context), SDPA_OK);
  EXPECT_STREQ(sdpa_last_error(), "");
  sdpa_context_destroy(context);
}

}  // namespace
