# Cross-builds sdpa for 64-bit Arm Linux on an x86-64 Debian host, and runs
# the tests through qemu-aarch64 (user mode).
#
#   cmake -S . -B build-arm -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#     -DSDPA_ARM_SYSROOT=/abs/path/to/sysroot
#
# Compiler: Debian's g++-aarch64-linux-gnu (GCC). Not clang: Highway 1.0.3
# only supports runtime dispatch on Arm when built with GCC (see
# HWY_HAVE_RUNTIME_DISPATCH in hwy/detect_targets.h).
#
# SDPA_ARM_SYSROOT (or the environment variable of the same name) is a folder
# holding the arm64 Debian packages of Highway, oneTBB, GoogleTest, Google
# Benchmark and their runtime dependencies (libc6, libstdc++6 ...), unpacked
# with `dpkg -x` rather than installed: scripts/test_arm.sh makes it. The
# compiler keeps its own sysroot (/usr/aarch64-linux-gnu) for the C and C++
# runtimes; find_package() looks in SDPA_ARM_SYSROOT; the emulator runs every
# binary with SDPA_ARM_SYSROOT as its root for the dynamic loader and shared
# libraries, so tests run against exactly the arm64 Debian libraries.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(SDPA_ARM_TRIPLET aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${SDPA_ARM_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${SDPA_ARM_TRIPLET}-g++)

if(NOT SDPA_ARM_SYSROOT AND DEFINED ENV{SDPA_ARM_SYSROOT})
  set(SDPA_ARM_SYSROOT "$ENV{SDPA_ARM_SYSROOT}")
endif()
if(NOT SDPA_ARM_SYSROOT)
  message(FATAL_ERROR
    "aarch64-linux-gnu.cmake: pass -DSDPA_ARM_SYSROOT=<folder with the arm64 "
    "packages unpacked> (scripts/test_arm.sh makes one)")
endif()
get_filename_component(SDPA_ARM_SYSROOT "${SDPA_ARM_SYSROOT}" ABSOLUTE)
set(SDPA_ARM_SYSROOT "${SDPA_ARM_SYSROOT}" CACHE PATH
    "Unpacked arm64 Debian packages: find_package() and qemu look here")
# try_compile() projects (e.g. find_package(Threads)) read this file again.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SDPA_ARM_SYSROOT)

# Libraries, headers and CMake packages from the target's folders only;
# programs (nm, python3, ...) from the host.
set(CMAKE_FIND_ROOT_PATH "${SDPA_ARM_SYSROOT}" /usr/${SDPA_ARM_TRIPLET})
set(CMAKE_LIBRARY_ARCHITECTURE ${SDPA_ARM_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The arm64 libraries that the libraries we link need in turn (libhwy ->
# libstdc++ ...) are resolved by the linker in the same folders.
foreach(dir lib/${SDPA_ARM_TRIPLET} usr/lib/${SDPA_ARM_TRIPLET})
  string(APPEND CMAKE_EXE_LINKER_FLAGS_INIT
         " -Wl,-rpath-link,${SDPA_ARM_SYSROOT}/${dir}")
  string(APPEND CMAKE_SHARED_LINKER_FLAGS_INIT
         " -Wl,-rpath-link,${SDPA_ARM_SYSROOT}/${dir}")
endforeach()

# ctest (and gtest_discover_tests) run target binaries through qemu. -L makes
# the sysroot the root for the dynamic loader (/lib/ld-linux-aarch64.so.1) and
# the shared libraries. The emulated CPU is qemu's default ("max") unless the
# environment sets QEMU_CPU, as the tests in tests/arm do per ctest entry.
find_program(SDPA_QEMU_AARCH64 qemu-aarch64)
if(NOT SDPA_QEMU_AARCH64)
  message(FATAL_ERROR "aarch64-linux-gnu.cmake: qemu-aarch64 not found "
                      "(apt-get install qemu-user)")
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR "${SDPA_QEMU_AARCH64};-L;${SDPA_ARM_SYSROOT}")
