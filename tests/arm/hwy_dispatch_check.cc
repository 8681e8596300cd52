// Asserts that calling libsdpa leaves Highway's own dynamic dispatch in the
// process on the best target. With Highway 1.0.3, hwy::SupportedTargets()
// (which libsdpa calls to list the ISAs) resets the process-wide chosen
// target to one without SVE_256/SVE2_128, so an application's (or our
// benchmarks') HWY_DYNAMIC_DISPATCH would drop from SVE2_128 to SVE2 after
// any sdpa call; src/dispatch.cc repairs that.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tests/arm/hwy_dispatch_check.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "sdpa/sdpa.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa_arm_test {
namespace HWY_NAMESPACE {
int64_t CompiledTarget() { return HWY_TARGET; }
}  // namespace HWY_NAMESPACE
}  // namespace sdpa_arm_test
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sdpa_arm_test {
HWY_EXPORT(CompiledTarget);
const char* Dispatched() {
  return hwy::TargetName(HWY_DYNAMIC_DISPATCH(CompiledTarget)());
}
}  // namespace sdpa_arm_test

int main() {
  using sdpa_arm_test::Dispatched;
  // Before any sdpa call: what Highway alone picks.
  const char* before = Dispatched();
  const char* sdpa_best =
      sdpa_isa_name(sdpa_context_isa(sdpa_default_context()));
  (void)sdpa_available_isas();
  sdpa_context* context = nullptr;
  if (sdpa_context_create(nullptr, &context) == SDPA_OK) {
    sdpa_context_destroy(context);
  }
  const char* after = Dispatched();
  std::printf("HWY_DYNAMIC_DISPATCH before sdpa: %s, after: %s; sdpa: %s\n",
              before, after, sdpa_best);
  int failures = 0;
  if (std::strcmp(before, after) != 0) {
    std::fprintf(stderr,
                 "FAIL: calling sdpa moved Highway's dispatch from "
                 "%s to %s\n",
                 before, after);
    ++failures;
  }
  // Highway and libsdpa must agree on the best target (names match except
  // for the scalar fallback: Highway says EMU128 or SCALAR).
  if (std::strcmp(sdpa_best, "SCALAR") != 0 &&
      std::strcmp(sdpa_best, before) != 0) {
    std::fprintf(stderr, "FAIL: Highway dispatches to %s, sdpa runs %s\n",
                 before, sdpa_best);
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
#endif  // HWY_ONCE
