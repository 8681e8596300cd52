#!/usr/bin/env bash
# Builds the libFuzzer target of the C API (fuzz/attention_fuzzer.cc) with
# clang, AddressSanitizer and UndefinedBehaviorSanitizer, and fuzzes for a
# bounded time starting from the checked-in seeds (fuzz/corpus).
#
#   bash scripts/fuzz.sh [SECONDS] [libFuzzer flags...]
#
# SECONDS defaults to $SDPA_FUZZ_SECONDS or 180. New inputs go to
# $build/corpus (fuzz/corpus is only read); a failing input is written to
# $build/artifacts/ and the script exits nonzero with the command that
# replays it. Build tree: $SDPA_FUZZ_BUILD (default build-fuzz).
# docs/robustness.md says what the target checks and what runs have found.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${SDPA_FUZZ_SECONDS:-180}}"
shift || true
build="${SDPA_FUZZ_BUILD:-build-fuzz}"
clang_version=14

# clang and its runtimes (libFuzzer, sanitizers) from Debian, if missing.
source scripts/lib/apt.sh
apt_install_missing fuzz "clang-$clang_version" "libclang-rt-$clang_version-dev"

# RelWithDebInfo: -O2 for executions per second, -g for readable reports.
CC="clang-$clang_version" CXX="clang++-$clang_version" \
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSDPA_BUILD_FUZZERS=ON -DSDPA_SANITIZE=address,undefined \
    -DSDPA_BUILD_TESTS=OFF -DSDPA_BUILD_BENCHMARKS=OFF \
    -DSDPA_BUILD_EXAMPLES=OFF -DSDPA_INSTALL=OFF -DSDPA_WERROR=ON >/dev/null
cmake --build "$build" --target sdpa_attention_fuzzer -j "$(nproc)"

rm -rf "$build/artifacts"
mkdir -p "$build/corpus" "$build/artifacts"
# allocator_may_return_null: a huge allocation fails as it would without
# ASan (the library must then report SDPA_ERROR_OUT_OF_MEMORY) instead of
# ASan aborting. Leak checking stays on (LeakSanitizer).
export ASAN_OPTIONS="allocator_may_return_null=1:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
echo "fuzz: $seconds s from fuzz/corpus ($(ls fuzz/corpus | wc -l) seeds)"
status=0
"$build/fuzz/sdpa_attention_fuzzer" "$build/corpus" fuzz/corpus \
  -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$build/artifacts/" "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "fuzz: FAILED (status $status). Failing inputs:"
  ls -l "$build/artifacts/"
  echo "Replay one: $build/fuzz/sdpa_attention_fuzzer $build/artifacts/<file>"
  echo "(SDPA_FUZZ_VERBOSE=1 prints the decoded case)"
  exit "$status"
fi
echo "fuzz: no failure (limit $seconds s; libFuzzer flags: ${*:-none})"
