// Threading contracts: the same bits for any thread count (when the key range
// is not split), correct merges when it is split (decoding), and no memory
// that grows with Tq x Tk.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

class KernelThreads : public ::testing::TestWithParam<uint64_t> {};

TEST_P(KernelThreads, SameBitsForAnyThreadCount) {
  // At least 8 tasks (2 batches x 4 KV heads), so up to 8 threads never
  // split the key range.
  const Case cases[] = {
      [] {
        Case c;
        c.batch = 2, c.q_heads = 8, c.kv_heads = 4;
        c.q_len = 300, c.kv_len = 300, c.head_dim = 64, c.value_dim = 64;
        c.causal = SDPA_CAUSAL_TOP_LEFT;
        return c;
      }(),
      [] {
        Case c;
        c.batch = 2, c.q_heads = 4, c.kv_heads = 4;
        c.q_len = 1, c.kv_len = 3000, c.head_dim = 32, c.value_dim = 32;
        c.mask = MaskKind::kAdditive;
        return c;
      }(),
      // BF16 weights (P·V on BF16 dot products on AVX3_ZEN4), with a
      // window, so that tiles start at odd keys of a block.
      [] {
        Case c;
        c.batch = 2, c.q_heads = 8, c.kv_heads = 4;
        c.q_len = 300, c.kv_len = 301, c.head_dim = 64, c.value_dim = 48;
        c.window_left = 77, c.window_right = 3;
        c.q_dtype = c.k_dtype = c.v_dtype = SDPA_DTYPE_BF16;
        c.flags = SDPA_FLAG_BF16_WEIGHTS;
        return c;
      }(),
  };
  for (const Case& c : cases) {
    Inputs inputs(c);
    const Result one = inputs.Run(ContextFor(GetParam(), 1));
    ASSERT_EQ(one.status, SDPA_OK) << one.error;
    EXPECT_LE(one.max_out_error,
              c.flags != 0 ? kBf16WeightsTolerance : kOutTolerance)
        << c.Name();
    for (int32_t threads : {2, 3, 8}) {
      const Result many = inputs.Run(ContextFor(GetParam(), threads));
      ASSERT_EQ(many.status, SDPA_OK) << many.error;
      ASSERT_EQ(one.out.size(), many.out.size());
      EXPECT_EQ(0, std::memcmp(one.out.data(), many.out.data(),
                               one.out.size() * sizeof(float)))
          << c.Name() << " threads " << threads;
      EXPECT_EQ(0, std::memcmp(one.lse.data(), many.lse.data(),
                               one.lse.size() * sizeof(float)))
          << c.Name() << " threads " << threads;
    }
  }
}

TEST_P(KernelThreads, SplitKeysMergeExactly) {
  // One task and several threads: the key range is split and merged.
  for (int32_t threads : {2, 3, 4, 7}) {
    for (sdpa_causal causal :
         {SDPA_CAUSAL_NONE, SDPA_CAUSAL_BOTTOM_RIGHT, SDPA_CAUSAL_TOP_LEFT}) {
      Case c;
      c.q_heads = 4, c.kv_heads = 1;
      c.q_len = 3, c.kv_len = 2500, c.head_dim = 40, c.value_dim = 24;
      c.causal = causal;
      // Top-left with Tq << Tk: most key blocks are invisible, so most
      // parts see nothing and must merge in with weight 0.
      c.window_left = causal == SDPA_CAUSAL_BOTTOM_RIGHT ? 700 : -1;
      Inputs inputs(c);
      const Result r = inputs.Run(ContextFor(GetParam(), threads));
      ASSERT_EQ(r.status, SDPA_OK) << r.error;
      EXPECT_LE(r.max_out_error, kOutTolerance) << c.Name() << " " << threads;
      EXPECT_LE(r.max_lse_error, kLseTolerance) << c.Name() << " " << threads;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelThreads,
                         ::testing::ValuesIn(AvailableIsas()), IsaParamName);

// Peak resident memory of this process, in bytes (VmHWM).
int64_t PeakResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::stoll(line.substr(6)) * 1024;
    }
  }
  return -1;
}

TEST(KernelMemory, LongSequenceNeedsNoScoreMatrix) {
  // T = 32768, D = 128, one head: a T x T fp32 score matrix would be 4 GiB.
  const int64_t t = 32768, d = 128;
  std::vector<float> q(t * d, 0.01f), k(t * d, 0.02f), v(t * d, 1.0f),
      out(t * d, 0.0f);
  auto view = [&](std::vector<float>& data) {
    sdpa_tensor x{};
    x.data = data.data();
    x.dtype = SDPA_DTYPE_F32;
    x.shape[0] = 1, x.shape[1] = 1, x.shape[2] = t, x.shape[3] = d;
    x.strides[0] = t * d, x.strides[1] = t * d, x.strides[2] = d,
    x.strides[3] = 1;
    return x;
  };
  sdpa_tensor tq = view(q), tk = view(k), tv = view(v), to = view(out);
  sdpa_attention_args args{};
  args.struct_size = sizeof(args);
  args.q = &tq, args.k = &tk, args.v = &tv, args.out = &to;
  args.causal = SDPA_CAUSAL_TOP_LEFT;  // halves the work; same workspace
  const int64_t before = PeakResidentBytes();
  ASSERT_GT(before, 0);
  ASSERT_EQ(sdpa_attention(nullptr, &args), SDPA_OK) << sdpa_last_error();
  const int64_t growth = PeakResidentBytes() - before;
  // Workspace is bounded by threads x block sizes (a few MiB). Sanitizer
  // runtimes keep freed memory in quarantine, so allow them more.
#if defined(__SANITIZE_ADDRESS__)
  const int64_t limit = int64_t{1} << 30;
#else
  const int64_t limit = int64_t{256} << 20;
#endif
  EXPECT_LT(growth, limit) << "peak RSS grew by " << (growth >> 20) << " MiB";
  // V rows all 1.0: every output is 1 up to the rounding of the two sums.
  EXPECT_NEAR(out[0], 1.0f, 1e-5f);
  EXPECT_NEAR(out[(t - 1) * d + d - 1], 1.0f, 1e-5f);
}

}  // namespace
}  // namespace sdpa_test
