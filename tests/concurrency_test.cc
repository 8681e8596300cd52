// The thread-safety promises of sdpa.h, exercised with many std::threads at
// once: one shared context, one context per thread, the default (NULL)
// context, contexts created and destroyed while others compute, and the
// per-thread last error. Every result is compared with the float64
// reference. Also run under ThreadSanitizer by scripts/tsan.sh.
#include <gtest/gtest.h>
#include <tbb/global_control.h>

#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/kernel_test_support.h"

namespace sdpa_test {
namespace {

constexpr int kThreads = 8;

// oneTBB starts one worker per core, minus one: on a small machine the
// contexts' arenas would hardly ever run tasks on several threads at once.
// Allowing 8 makes them do so here too (more interleavings for TSan).
class ManyTbbWorkers : public ::testing::Environment {
 public:
  void SetUp() override {
    control_ = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, kThreads);
  }
  void TearDown() override { control_.reset(); }

 private:
  std::unique_ptr<tbb::global_control> control_;
};
::testing::Environment* const kManyTbbWorkers =
    ::testing::AddGlobalTestEnvironment(new ManyTbbWorkers);

// A different problem for each (thread, iteration): prefill, GQA, decode
// with split keys, masks, windows, causal alignments, strided layouts.
Case CaseFor(int thread, int iteration) {
  Case c;
  const int n = thread * 7 + iteration;
  c.seed = static_cast<uint32_t>(1 + n);
  // Decode cases (n % 4 == 1) with batch = kv_heads = 1 are one task:
  // their keys are split across the context's threads.
  c.batch = 1 + (n / 4) % 2;
  c.kv_heads = 1 + (n / 8) % 2;
  c.q_heads = c.kv_heads * (1 + (n / 2) % 3);
  switch (n % 4) {
    case 0:  // prefill
      c.q_len = 17 + n % 40, c.kv_len = 19 + (n * 13) % 150;
      break;
    case 1:  // decode: one task per (batch, kv head), keys split
      c.q_len = 1, c.kv_len = 600 + (n * 37) % 700;
      break;
    case 2:  // short
      c.q_len = 1 + n % 5, c.kv_len = 1 + n % 9;
      break;
    default:  // more queries than keys
      c.q_len = 70, c.kv_len = 9 + n % 20;
  }
  c.head_dim = 8 + 8 * (n % 5);
  c.value_dim = n % 3 == 0 ? c.head_dim : 24;
  c.causal = static_cast<sdpa_causal>(n % 3);
  if (n % 5 == 2) c.window_left = 7, c.window_right = 3;
  if (n % 6 == 1) c.mask = MaskKind::kAdditive;
  if (n % 6 == 4) c.mask = MaskKind::kBool, c.mask_heads_1 = true;
  c.layout = static_cast<Layout>(n % 6);
  return c;
}

// Failures from worker threads, reported by the main thread.
class Failures {
 public:
  void Add(const std::string& failure) {
    std::lock_guard<std::mutex> lock(mutex_);
    failures_.push_back(failure);
  }
  void Expect(int expected_runs) {
    EXPECT_EQ(runs.load(), expected_runs);
    for (const std::string& failure : failures_) ADD_FAILURE() << failure;
  }
  std::atomic<int> runs{0};

 private:
  std::mutex mutex_;
  std::vector<std::string> failures_;
};

void RunAndCheck(sdpa_context* context, const Case& c, Failures& failures) {
  Inputs inputs(c);
  const Result r = inputs.Run(context);
  ++failures.runs;
  if (r.status != SDPA_OK) {
    failures.Add(c.Name() + ": status " + std::to_string(r.status) + " " +
                 r.error);
    return;
  }
  if (!(r.max_out_error <= kOutTolerance) ||
      !(r.max_lse_error <= kLseTolerance) || !r.padding_intact) {
    failures.Add(c.Name() + ": out error " + std::to_string(r.max_out_error) +
                 ", lse error " + std::to_string(r.max_lse_error) +
                 (r.padding_intact ? "" : ", padding written"));
  }
}

sdpa_context* Create(int32_t threads, uint64_t isa) {
  sdpa_context_options options{};
  options.struct_size = sizeof(options);
  options.num_threads = threads;
  options.isa = isa;
  sdpa_context* context = nullptr;
  EXPECT_EQ(sdpa_context_create(&options, &context), SDPA_OK)
      << sdpa_last_error();
  return context;
}

constexpr int kIterations = 4;

TEST(Concurrency, ManyThreadsShareOneContext) {
  // 3 threads of its own, so calls from 8 threads compete for its arena.
  sdpa_context* shared = Create(3, 0);
  ASSERT_NE(shared, nullptr);
  Failures failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        RunAndCheck(shared, CaseFor(t, i), failures);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  failures.Expect(kThreads * kIterations);
  sdpa_context_destroy(shared);
}

TEST(Concurrency, OneContextPerThread) {
  const std::vector<uint64_t> isas = AvailableIsas();
  Failures failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread its own ISA and thread count.
      sdpa_context* mine = Create(1 + t % 3, isas[t % isas.size()]);
      if (mine == nullptr) {
        failures.Add("sdpa_context_create failed");
        return;
      }
      for (int i = 0; i < kIterations; ++i) {
        RunAndCheck(mine, CaseFor(t, i + 10), failures);
      }
      sdpa_context_destroy(mine);
    });
  }
  for (std::thread& thread : threads) thread.join();
  failures.Expect(kThreads * kIterations);
}

// When this test runs first in its process (ctest runs each test in its
// own), the threads also race to create the default context.
TEST(Concurrency, ManyThreadsUseTheDefaultContext) {
  Failures failures;
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kIterations; ++i) {
        RunAndCheck(nullptr, CaseFor(t, i + 20), failures);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  failures.Expect(kThreads * kIterations);
  EXPECT_NE(sdpa_default_context(), nullptr);
}

// Half the threads compute on a shared context while the others create,
// use and destroy contexts (every ISA, 1-4 threads) in a loop.
TEST(Concurrency, ContextsComeAndGoWhileOthersCompute) {
  const std::vector<uint64_t> isas = AvailableIsas();
  sdpa_context* shared = Create(2, 0);
  ASSERT_NE(shared, nullptr);
  Failures failures;
  std::atomic<bool> churning{true};
  std::atomic<int> computed{0};
  std::vector<std::thread> computers, churners;
  for (int t = 0; t < kThreads / 2; ++t) {
    computers.emplace_back([&, t] {
      // Keep computing until the churners are done, at least 3 calls.
      for (int i = 0; churning.load() || i < 3; ++i) {
        Inputs inputs(CaseFor(t, i % 12));
        const Result r = inputs.Run(shared);
        ++computed;
        if (r.status != SDPA_OK || !(r.max_out_error <= kOutTolerance)) {
          failures.Add("shared context: " + r.error);
        }
      }
    });
  }
  for (int t = 0; t < kThreads / 2; ++t) {
    churners.emplace_back([&, t] {
      for (int i = 0; i < 12; ++i) {
        sdpa_context* context =
            Create(1 + (t + i) % 4, isas[(t + i) % isas.size()]);
        if (context == nullptr) {
          failures.Add("sdpa_context_create failed");
          continue;
        }
        if (i % 2 == 0) RunAndCheck(context, CaseFor(t + 4, i % 8), failures);
        sdpa_context_destroy(context);
      }
    });
  }
  for (std::thread& thread : churners) thread.join();
  churning = false;
  for (std::thread& thread : computers) thread.join();
  failures.Expect(kThreads / 2 * 6);
  EXPECT_GE(computed.load(), kThreads / 2 * 3);
  sdpa_context_destroy(shared);
}

// sdpa_last_error() is per thread: while other threads fail and succeed,
// each thread reads the message of its own last call.
TEST(Concurrency, LastErrorIsPerThreadUnderLoad) {
  sdpa_context* shared = Create(2, 0);
  ASSERT_NE(shared, nullptr);
  Failures failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Case c = CaseFor(t, 3);
      c.mask = MaskKind::kNone;
      Inputs inputs(c);
      for (int i = 0; i < 20; ++i) {
        const bool fail = (t + i) % 2 == 0;
        // A refused call: the scale is not finite.
        Case bad = c;
        bad.scale = std::numeric_limits<float>::infinity();
        if (fail) {
          Inputs bad_inputs(bad);
          const Result r = bad_inputs.Run(shared);
          if (r.status != SDPA_ERROR_INVALID_ARGUMENT ||
              r.error.find("args->scale") == std::string::npos) {
            failures.Add("thread " + std::to_string(t) + ": got \"" + r.error +
                         "\"");
          }
          // Still this thread's message after the others' calls.
          std::this_thread::yield();
          if (std::string(sdpa_last_error()).find("args->scale") ==
              std::string::npos) {
            failures.Add("thread " + std::to_string(t) +
                         " lost its message: \"" + sdpa_last_error() + "\"");
          }
        } else {
          const Result r = inputs.Run(shared);
          if (r.status != SDPA_OK || !r.error.empty() ||
              sdpa_last_error()[0] != '\0') {
            failures.Add("thread " + std::to_string(t) + ": success left \"" +
                         sdpa_last_error() + "\"");
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  failures.Expect(0);
  sdpa_context_destroy(shared);
}

}  // namespace
}  // namespace sdpa_test
