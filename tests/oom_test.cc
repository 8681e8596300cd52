// An allocation failure inside sdpa_attention returns
// SDPA_ERROR_OUT_OF_MEMORY with a message and leaves the process usable.
//
// Each test forks a child that never shares TBB state with the parent (the
// parent makes no sdpa call). The child warms a context up, lowers its
// address-space limit (RLIMIT_AS) a little above what it uses, makes a call
// whose workspace cannot fit, checks the status, raises the limit again and
// checks that an ordinary call on the same context matches the reference.
// Skipped under AddressSanitizer and ThreadSanitizer, whose shadow memory
// needs terabytes of address space.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tests/kernel_test_support.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SDPA_OOM_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SDPA_OOM_TEST_SANITIZED 1
#endif

namespace sdpa_test {
namespace {

// Virtual size of this process in bytes (VmSize), or -1.
int64_t VirtualBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoll(line.substr(7)) * 1024;
  }
  return -1;
}

bool SetAddressLimit(rlim_t bytes) {
  rlimit limit{};
  if (getrlimit(RLIMIT_AS, &limit) != 0) return false;
  limit.rlim_cur = bytes;
  return setrlimit(RLIMIT_AS, &limit) == 0;
}

sdpa_tensor View(void* data, const int64_t shape[4], const int64_t strides[4]) {
  sdpa_tensor t{};
  t.data = data;
  t.dtype = SDPA_DTYPE_F32;
  for (int d = 0; d < 4; ++d) t.shape[d] = shape[d], t.strides[d] = strides[d];
  return t;
}

// Contiguous BHSD strides of a shape.
void Dense(const int64_t shape[4], int64_t strides[4]) {
  strides[3] = 1;
  for (int d = 2; d >= 0; --d) strides[d] = strides[d + 1] * shape[d + 1];
}

// A call whose output is big and cheap to describe: V is one row of `dv`
// values broadcast over all keys (stride 0), so every output row equals it.
struct BigCall {
  int64_t q_shape[4], k_shape[4], v_shape[4], o_shape[4];
  std::vector<float> q, k, v, out;
  sdpa_tensor tq{}, tk{}, tv{}, to{};
  sdpa_attention_args args{};

  BigCall(int64_t q_heads, int64_t q_len, int64_t kv_len, int64_t dv)
      : q_shape{1, q_heads, q_len, 4},
        k_shape{1, 1, kv_len, 4},
        v_shape{1, 1, kv_len, dv},
        o_shape{1, q_heads, q_len, dv} {
    int64_t qs[4], ks[4], os[4];
    Dense(q_shape, qs), Dense(k_shape, ks), Dense(o_shape, os);
    const int64_t vs[4] = {0, 0, 0, 1};
    q.assign(static_cast<size_t>(q_heads * q_len * 4), 0.25f);
    k.assign(static_cast<size_t>(kv_len * 4), 0.5f);
    v.resize(static_cast<size_t>(dv));
    for (int64_t e = 0; e < dv; ++e)
      v[static_cast<size_t>(e)] = float(e % 7) - 3;
    out.assign(static_cast<size_t>(q_heads * q_len * dv), 0.0f);
    tq = View(q.data(), q_shape, qs);
    tk = View(k.data(), k_shape, ks);
    tv = View(v.data(), v_shape, vs);
    to = View(out.data(), o_shape, os);
    args.struct_size = sizeof(args);
    args.q = &tq, args.k = &tk, args.v = &tv, args.out = &to;
    args.window_left = args.window_right = -1;
  }

  // Every output row equals the broadcast V row (to rounding).
  std::string CheckOutput() const {
    const int64_t dv = v_shape[3];
    for (size_t i = 0; i < out.size(); ++i) {
      const float want = v[i % static_cast<size_t>(dv)];
      if (!(std::fabs(out[i] - want) <= 1e-5f * 3)) {
        return "out[" + std::to_string(i) + "] = " + std::to_string(out[i]) +
               ", want " + std::to_string(want);
      }
    }
    return "";
  }
};

// What a child reports when RLIMIT_AS has no effect (the test is skipped).
constexpr const char* kNotEnforced = "RLIMIT_AS is not enforced here";

// The body of a child: "" on success, else what went wrong.
std::string OomThenRecover(int32_t threads, BigCall& big, BigCall& warm_up,
                           bool rerun_big) {
  sdpa_context_options options{};
  options.struct_size = sizeof(options);
  options.num_threads = threads;
  sdpa_context* context = nullptr;
  if (sdpa_context_create(&options, &context) != SDPA_OK) {
    return std::string("create: ") + sdpa_last_error();
  }
  // The same kind of call, small: the arena, its worker threads and the
  // caller's scratch exist before the limit drops.
  if (sdpa_attention(context, &warm_up.args) != SDPA_OK) {
    return std::string("warm-up: ") + sdpa_last_error();
  }
  const int64_t used = VirtualBytes();
  if (used <= 0) return "cannot read VmSize";
  if (!SetAddressLimit(static_cast<rlim_t>(used + (24 << 20)))) {
    return "setrlimit failed";
  }
  // Emulators (qemu-user) accept the limit without enforcing it.
  if (void* probe = std::malloc(size_t{64} << 20)) {
    std::free(probe);
    SetAddressLimit(RLIM_INFINITY);
    return kNotEnforced;
  }
  const sdpa_status status = sdpa_attention(context, &big.args);
  const std::string message = sdpa_last_error();
  if (!SetAddressLimit(RLIM_INFINITY)) return "cannot raise the limit again";
  if (status != SDPA_ERROR_OUT_OF_MEMORY) {
    return "status " + std::to_string(status) + " (" + message +
           "), want SDPA_ERROR_OUT_OF_MEMORY";
  }
  if (message.empty()) return "SDPA_ERROR_OUT_OF_MEMORY without a message";

  // Usable again: the same context, an ordinary call, the right result; and
  // (when it is cheap) the big call itself now that memory is there.
  Case c;
  c.q_heads = 4, c.kv_heads = 2, c.q_len = 33, c.kv_len = 700;
  c.head_dim = 24, c.value_dim = 16, c.mask = MaskKind::kAdditive;
  c.causal = SDPA_CAUSAL_BOTTOM_RIGHT;
  Inputs inputs(c);
  const Result r = inputs.Run(context);
  if (r.status != SDPA_OK) return "after OOM: " + r.error;
  if (!(r.max_out_error <= kOutTolerance && r.max_lse_error <= kLseTolerance)) {
    return "after OOM: result differs from the reference";
  }
  if (rerun_big) {
    if (sdpa_attention(context, &big.args) != SDPA_OK) {
      return std::string("big call after OOM: ") + sdpa_last_error();
    }
    const std::string wrong = big.CheckOutput();
    if (!wrong.empty()) return "big call after OOM: " + wrong;
  }
  sdpa_context_destroy(context);
  return "";
}

// Runs `body` in a forked child; returns its report ("" = passed).
template <typename Body>
std::string InChild(Body body) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return "pipe failed";
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    close(pipe_fds[0]);
    std::string report;
    try {
      report = body();
    } catch (...) {
      report = "exception in the child";
    }
    if (!report.empty()) {
      const ssize_t ignored = write(pipe_fds[1], report.data(), report.size());
      (void)ignored;
    }
    close(pipe_fds[1]);
    _exit(report.empty() ? 0 : 1);
  }
  close(pipe_fds[1]);
  std::string report;
  char buffer[512];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0) {
    report.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int wait_status = 0;
  waitpid(pid, &wait_status, 0);
  if (!WIFEXITED(wait_status)) {
    return "child died (signal " + std::to_string(WTERMSIG(wait_status)) +
           ") " + report;
  }
  if (WEXITSTATUS(wait_status) != 0 && report.empty()) {
    return "child exited with " + std::to_string(WEXITSTATUS(wait_status));
  }
  return report;
}

class OutOfMemory : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef SDPA_OOM_TEST_SANITIZED
    GTEST_SKIP() << "sanitizer runtimes reserve far more address space than "
                    "RLIMIT_AS could leave";
#endif
  }
};

// A task's scratch (its output accumulator is rows x Dv floats) cannot
// grow: 64 query heads sharing one KV head, 3 positions = 192 rows of
// 65536 values, 48 MiB, with 24 MiB of address space left.
TEST_F(OutOfMemory, TaskScratchThatCannotGrow) {
  const std::string report = InChild([] {
    BigCall big(/*q_heads=*/64, /*q_len=*/3, /*kv_len=*/4, /*dv=*/65536);
    BigCall warm_up(64, 3, 4, 64);
    return OomThenRecover(/*threads=*/1, big, warm_up, /*rerun_big=*/true);
  });
  if (report == kNotEnforced) GTEST_SKIP() << report;
  EXPECT_EQ(report, "");
}

// Decoding with the key range split across threads: the partial outputs
// (parts x rows x Dv floats, 8 x 1 x 2^21 = 64 MiB) cannot be allocated.
TEST_F(OutOfMemory, SplitKeyMergeBufferThatCannotBeAllocated) {
  const std::string report = InChild([] {
    BigCall big(/*q_heads=*/1, /*q_len=*/1, /*kv_len=*/8 * 512,
                /*dv=*/int64_t{1} << 21);
    BigCall warm_up(1, 1, 8 * 512, 64);
    // 8G multiply-adds: too slow to run again here.
    return OomThenRecover(/*threads=*/8, big, warm_up, /*rerun_big=*/false);
  });
  if (report == kNotEnforced) GTEST_SKIP() << report;
  EXPECT_EQ(report, "");
}

}  // namespace
}  // namespace sdpa_test
