#!/usr/bin/env bash
# The Arm leg of CI, from a fresh Debian 12 x86-64 machine: cross-builds sdpa
# (library, tests, benchmarks) for aarch64 and runs the "arm" ctest entries
# under qemu-aarch64 with several emulated CPUs (NEON; SVE at 512 and 256
# bits; SVE2 at 128, 256, 512 and 2048 bits), see tests/arm/CMakeLists.txt.
#
#   bash scripts/test_arm.sh            # build dir: build-arm/
#   SDPA_ARM_BUILD=dir SDPA_ARM_JOBS=n bash scripts/test_arm.sh
#
# Host packages: g++-aarch64-linux-gnu and qemu-user (not qemu-user-static,
# which registers binfmt handlers system-wide). The arm64 libraries are NOT
# installed through multiarch (libtbb12:arm64 pulls libudev1:arm64, which
# must match the installed amd64 systemd): a private apt state under the
# build dir lists Debian's arm64 packages, `apt-get download` fetches the
# .deb files and `dpkg -x` unpacks them into <build>/sysroot. Nothing of the
# host's apt or dpkg configuration changes. The sysroot is reused while the
# package list is unchanged, so a rerun costs only the (incremental) build
# and the tests. Benchmarks are built, never run: timings under qemu mean
# nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
start_seconds=$SECONDS
build="${SDPA_ARM_BUILD:-build-arm}"
jobs="${SDPA_ARM_JOBS:-$(nproc)}"
mkdir -p "$build"
build="$(cd "$build" && pwd)"
sysroot="$build/sysroot"

log() { echo "test_arm: [$((SECONDS - start_seconds)) s] $*"; }

source scripts/lib/apt.sh

# 1. Host tools, installed only when missing.
apt_install_missing test_arm cmake ninja-build g++-aarch64-linux-gnu qemu-user

# 2. The arm64 sysroot: what find_package() needs (headers, CMake configs,
#    libraries) and what qemu needs to run the binaries (loader, libc,
#    libstdc++, and what libtbb's tbbbind loads: hwloc, udev).
arm_packages=(libhwy-dev libhwy1
              libtbb-dev libtbb12 libtbbmalloc2 libtbbbind-2-5 libhwloc15
              libudev1
              libgtest-dev libbenchmark-dev libbenchmark1debian
              libc6 libstdc++6 libgcc-s1)
stamp="$sysroot/.sdpa-packages"
if [[ "$(cat "$stamp" 2>/dev/null)" != "${arm_packages[*]}" ]]; then
  log "fetching the arm64 packages into $sysroot"
  apt_dir="$build/apt"
  rm -rf "$apt_dir" "$sysroot"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" \
           "$apt_dir/debs"
  touch "$apt_dir/status"
  # The host's Debian release, so the arm64 versions match the amd64 ones
  # the host builds with.
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  cat > "$apt_dir/sources.list" <<EOF
deb http://deb.debian.org/debian $codename main
deb http://deb.debian.org/debian $codename-updates main
deb http://deb.debian.org/debian-security $codename-security main
EOF
  apt_options=(
    -o APT::Architecture=arm64 -o APT::Architectures::=arm64
    -o Dir::State="$apt_dir" -o Dir::State::Lists="$apt_dir/lists"
    -o Dir::State::status="$apt_dir/status" -o Dir::Cache="$apt_dir/cache"
    -o Dir::Etc::SourceList="$apt_dir/sources.list"
    -o Dir::Etc::SourceParts=/nonexistent
    -o Dir::Etc::Preferences=/nonexistent
    -o Dir::Etc::PreferencesParts=/nonexistent
    -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)")
  apt-get "${apt_options[@]}" update -qq
  (cd "$apt_dir/debs" && apt-get "${apt_options[@]}" download -q \
     "${arm_packages[@]}")
  mkdir -p "$sysroot"
  for deb in "$apt_dir/debs"/*.deb; do
    dpkg -x "$deb" "$sysroot"
  done
  # A link with an absolute target would point into the host.
  if find "$sysroot" -type l -lname '/*' | grep -q .; then
    echo "test_arm: absolute symlinks in $sysroot:" >&2
    find "$sysroot" -type l -lname '/*' >&2
    exit 1
  fi
  echo "${arm_packages[*]}" > "$stamp"
  rm -rf "$apt_dir"
else
  log "reusing $sysroot"
fi

# 3. Configure, build, test.
log "configure"
cmake -S . -B "$build" -G Ninja \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/aarch64-linux-gnu.cmake" \
  -DSDPA_ARM_SYSROOT="$sysroot" -DCMAKE_BUILD_TYPE=Release -DSDPA_WERROR=ON
log "build (-j $jobs)"
cmake --build "$build" -j "$jobs"
log "ctest -L arm"
ctest --test-dir "$build" -L arm --output-on-failure -j "$jobs" --timeout 900
log "all Arm tests passed"
