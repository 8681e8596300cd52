#!/usr/bin/env bash
# Everything CI checks, in one command (see .ci/run):
#   1. Release build with warnings as errors, all ctest entries;
#   2. the installed package used four ways (scripts/test_consumers.sh);
#   3. an AddressSanitizer + UndefinedBehaviorSanitizer build, ctest again
#      (LeakSanitizer on);
#   4. ThreadSanitizer over the threading tests (scripts/tsan.sh);
#   5. a bounded fuzzing run of the C API (scripts/fuzz.sh).
# A failing stage does not stop the independent ones, so one run reports
# everything that is broken; the exit status is nonzero if any stage failed.
# Build trees go under $SDPA_BUILD_ROOT (default build-test/).
set -euo pipefail
cd "$(dirname "$0")/.."
start_seconds=$SECONDS
build_root="${SDPA_BUILD_ROOT:-build-test}"
jobs="$(nproc)"
release="$build_root/release"
sanitize="$build_root/sanitize"
failed=()

# stage NAME COMMAND...: runs one command, records its failure.
stage() {
  local name="$1"
  shift
  echo
  echo "=== $name [$(date +%T), $((SECONDS - start_seconds)) s]"
  if "$@"; then
    return 0
  fi
  failed+=("$name")
  return 1
}

stage "setup" bash scripts/setup.sh

if stage "configure Release" \
     cmake -S . -B "$release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
       -DSDPA_WERROR=ON &&
   stage "build Release (-DSDPA_WERROR=ON)" \
     cmake --build "$release" -j "$jobs"; then
  stage "ctest, Release" \
    ctest --test-dir "$release" --output-on-failure -j 2 --timeout 900 || true
  stage "consumers of the installed package" \
    bash scripts/test_consumers.sh "$release" || true
fi

# Debug with -O1: assertions on, and fast enough that the whole suite runs
# under the sanitizers. Benchmarks are left out (the Release build compiled
# them). The Python tests are left out: the interpreter would have to preload
# the ASan runtime.
if stage "configure sanitizers" \
     cmake -S . -B "$sanitize" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
       -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
       -DSDPA_WERROR=ON -DSDPA_SANITIZE=address,undefined \
       -DSDPA_BUILD_BENCHMARKS=OFF &&
   stage "build sanitizers (address,undefined)" \
     cmake --build "$sanitize" -j "$jobs"; then
  stage "ctest, sanitizers" \
    env UBSAN_OPTIONS=print_stacktrace=1 \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1" \
    ctest --test-dir "$sanitize" --output-on-failure -j 2 --timeout 900 \
      -LE python || true
fi

# ThreadSanitizer over the threading tests, on a oneTBB built with TSan from
# Debian's source package (scripts/tsan.sh, docs/robustness.md): ~3 minutes.
stage "ThreadSanitizer" \
  env SDPA_TSAN_BUILD="$build_root/tsan" bash scripts/tsan.sh || true

# Fuzz the C API from fuzz/corpus with clang's libFuzzer, ASan and UBSan
# after a ~3-minute build (scripts/fuzz.sh). CI fuzzes a fixed number of
# inputs from a fixed seed, so that the same tree gives the same verdict on
# any machine: what was green when submitted stays green. Open-ended
# exploration is scripts/fuzz.sh with a time (docs/robustness.md);
# SDPA_FUZZ_RUNS changes the count here.
stage "fuzz (${SDPA_FUZZ_RUNS:-20000} inputs, seed 1)" \
  env SDPA_FUZZ_BUILD="$build_root/fuzz" \
  bash scripts/fuzz.sh 900 -seed=1 -runs="${SDPA_FUZZ_RUNS:-20000}" || true

# Arm: aarch64 cross build, every suite under qemu's NEON/SVE/SVE2 CPUs
# (scripts/test_arm.sh, README "Arm"). Its time depends on the host's qemu:
# 31 minutes on a 2-vCPU Intel Xeon VM (2026-12-07; 48 before SVE2 at 256
# and 512 bits were left out, tests/arm/CMakeLists.txt), where the whole
# script took 23 on the Zen 5 host.
stage "Arm (aarch64 under qemu)" \
  env SDPA_ARM_BUILD="$build_root/arm" bash scripts/test_arm.sh || true

echo
echo "=== done in $((SECONDS - start_seconds)) s"
if [[ ${#failed[@]} -gt 0 ]]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all passed"
