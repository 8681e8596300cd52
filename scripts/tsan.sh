#!/usr/bin/env bash
# ThreadSanitizer over the threading tests: kernel_threads_test (thread
# counts, split keys) and concurrency_test (many std::threads calling
# sdpa_attention at once on shared, per-thread and default contexts, contexts
# created and destroyed meanwhile, per-thread last error).
#
#   bash scripts/tsan.sh
#
# Debian's libtbb.so.12 is not built with -fsanitize=thread, and oneTBB hands
# tasks (and whole arena jobs, when several threads share a context) from
# thread to thread inside it: TSan then misses that synchronisation and
# reports races in libsdpa code that are not there. Suppressing those would
# hide real ones, so this script builds the same oneTBB (Debian's source
# package of the installed libtbb-dev version, Debian's patches, upstream's
# TBB_SANITIZE=thread; about 30 s) and runs the tests on it through
# LD_LIBRARY_PATH. No suppressions are needed or used.
#
# Build tree: $SDPA_TSAN_BUILD (default build-tsan); the oneTBB build is
# kept there and reused while the installed version stays the same.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${SDPA_TSAN_BUILD:-build-tsan}"
mkdir -p "$build"
build="$(cd "$build" && pwd)"
start_seconds=$SECONDS

source scripts/lib/apt.sh
apt_install_missing tsan patch xz-utils

# --- oneTBB with ThreadSanitizer -------------------------------------------
package="$(dpkg-query -W -f='${source:Package}' libtbb-dev)"
version="$(dpkg-query -W -f='${Version}' libtbb-dev)"
tbb_lib_dir="$build/onetbb-tsan/lib"
if [[ "$(cat "$build/onetbb-tsan/version" 2>/dev/null)" != "$version" ]]; then
  echo "=== tsan: building $package $version with -fsanitize=thread"
  rm -rf "$build/onetbb-tsan"
  apt_dir="$build/onetbb-tsan/apt"
  mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" \
    "$build/onetbb-tsan/src"
  # The machine's own Debian sources (mirror, keyring), as deb-src, in a
  # private apt state: the system's configuration is not touched.
  : >"$apt_dir/sources.list"
  if [[ -f /etc/apt/sources.list ]]; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$apt_dir/sources.list"
  fi
  for file in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f "$file" ]] || continue
    if [[ "$file" == *.sources ]]; then
      sed 's/^Types:.*/Types: deb-src/' "$file" \
        >"$apt_dir/sources.list.d/$(basename "$file")"
    else
      sed -n 's/^deb /deb-src /p' "$file" \
        >"$apt_dir/sources.list.d/$(basename "$file")"
    fi
  done
  apt_options=(-o "Dir::Etc::SourceList=$apt_dir/sources.list"
               -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
               -o "Dir::State::Lists=$apt_dir/lists"
               -o "APT::Sandbox::User=root")
  apt-get "${apt_options[@]}" update -qq
  (cd "$build/onetbb-tsan/src" &&
     apt-get "${apt_options[@]}" source --download-only -qq \
       "$package=$version")
  src="$build/onetbb-tsan/src"
  tar -C "$src" -xf "$src"/*.orig.tar.*
  tar -C "$src" -xf "$src"/*.debian.tar.*
  tree="$(find "$src" -mindepth 1 -maxdepth 1 -type d ! -name debian \
            -print -quit)"
  if [[ -f "$src/debian/patches/series" ]]; then
    while read -r patch_name; do
      [[ -z "$patch_name" || "$patch_name" == \#* ]] && continue
      patch -d "$tree" -p1 -s --forward <"$src/debian/patches/$patch_name"
    done <"$src/debian/patches/series"
  fi
  cmake -S "$tree" -B "$build/onetbb-tsan/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTBB_SANITIZE=thread -DTBB_TEST=OFF \
    -DTBB_EXAMPLES=OFF -DTBBMALLOC_BUILD=OFF -DTBB_STRICT=OFF \
    -DTBB_DISABLE_HWLOC_AUTOMATIC_SEARCH=ON >/dev/null
  cmake --build "$build/onetbb-tsan/build" --target tbb -j "$(nproc)"
  mkdir -p "$tbb_lib_dir"
  built="$(find "$build/onetbb-tsan/build" -name 'libtbb.so.12*' -type f \
            -print -quit)"
  cp -P "$(dirname "$built")"/libtbb.so* "$tbb_lib_dir/"
  echo "$version" >"$build/onetbb-tsan/version"
fi

# --- libsdpa and the tests with ThreadSanitizer ----------------------------
# -O1 -g: readable reports at a bearable speed. The headers are the
# installed oneTBB's, the same version as the library built above.
cmake -S . -B "$build/sdpa" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
  -DSDPA_SANITIZE=thread -DSDPA_WERROR=ON -DSDPA_BUILD_BENCHMARKS=OFF \
  -DSDPA_BUILD_EXAMPLES=OFF -DSDPA_INSTALL=OFF >/dev/null
cmake --build "$build/sdpa" -j "$(nproc)" \
  --target kernel_threads_test concurrency_test

export LD_LIBRARY_PATH="$tbb_lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# A run on the uninstrumented oneTBB would report false races: make sure.
loaded="$(ldd "$build/sdpa/tests/concurrency_test")"
if [[ "$loaded" != *"libtbb.so.12 => $tbb_lib_dir/"* ]]; then
  echo "tsan: the tests do not load $tbb_lib_dir/libtbb.so.12" >&2
  exit 1
fi
# halt_on_error: the first report fails the run.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
status=0
for test in kernel_threads_test concurrency_test; do
  echo "=== tsan: $test"
  # setarch -R: the TSan of GCC 12 cannot lay out its shadow memory on
  # kernels that randomise mmap more (vm.mmap_rnd_bits = 32, a default of
  # some distributions); harmless elsewhere.
  # KernelMemory.* is one 32768-key call: nothing threaded to check, and
  # far too slow under TSan.
  setarch "$(uname -m)" -R "$build/sdpa/tests/$test" --gtest_brief=1 \
    --gtest_filter=-KernelMemory.* || status=$?
done
echo "=== tsan: done in $((SECONDS - start_seconds)) s, status $status"
exit "$status"
