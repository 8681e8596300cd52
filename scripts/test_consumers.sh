#!/usr/bin/env bash
# Installs a built sdpa tree into a fresh prefix, then builds and runs
# examples/c against the installed files four ways: CMake package + shared,
# CMake package + static, pkg-config + shared, pkg-config + static. Checks
# with ldd that the shared programs load libsdpa.so from the prefix and the
# static ones do not load it at all.
#
#   scripts/test_consumers.sh BUILD_DIR [PREFIX]
# PREFIX defaults to a temporary directory, removed afterwards.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 BUILD_DIR [PREFIX]" >&2
  exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "$1" && pwd)"
work="$(mktemp -d /tmp/sdpa-consumers.XXXXXX)"
trap 'rm -rf "$work"' EXIT
prefix="${2:-$work/prefix}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
# Nothing may come from the environment: the rpath alone must find libsdpa.so.
unset LD_LIBRARY_PATH
generator=()
if command -v ninja >/dev/null; then
  generator=(-G Ninja)
fi

fail() {
  echo "consumers: FAILED: $*" >&2
  exit 1
}

# check_linkage PROGRAM shared|static
check_linkage() {
  local program="$1" kind="$2" line
  line="$(ldd "$program" | grep 'libsdpa\.so' || true)"
  if [[ "$kind" == shared ]]; then
    [[ "$line" == *"=> $prefix/"* ]] ||
      fail "$program should load libsdpa.so from $prefix; ldd says: '${line}'"
  else
    [[ -z "$line" ]] || fail "$program should not load libsdpa.so: $line"
  fi
}

# run_example PROGRAM shared|static HOW
run_example() {
  local program="$1" kind="$2" how="$3"
  check_linkage "$program" "$kind"
  "$program" || fail "$how + $kind: the example reported a mismatch or error"
  echo "consumers: $how + $kind: OK"
}

echo "consumers: installing $build into $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
header="$prefix/include/sdpa/sdpa.h"
[[ -f "$header" ]] || fail "$header was not installed"
pc_file="$(find "$prefix" -name sdpa.pc -path '*/pkgconfig/*' | head -n 1)"
[[ -n "$pc_file" ]] || fail "sdpa.pc was not installed"

# CMake: find_package(sdpa) through CMAKE_PREFIX_PATH.
cmake -S "$repo/examples/c" -B "$work/cmake" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
run_example "$work/cmake/attention_example_shared" shared "CMake"
run_example "$work/cmake/attention_example_static" static "CMake"

# pkg-config: the Makefile next to the example.
PKG_CONFIG_PATH="$(dirname "$pc_file")"
export PKG_CONFIG_PATH
pkg-config --static --libs sdpa | grep -q -- '-lhwy' ||
  fail "pkg-config --static --libs sdpa does not bring in Highway"
mkdir -p "$work/make"
make -s -C "$work/make" -f "$repo/examples/c/Makefile" >/dev/null
run_example "$work/make/attention_example_shared" shared "pkg-config"
run_example "$work/make/attention_example_static" static "pkg-config"
echo "consumers: all four ways OK"
