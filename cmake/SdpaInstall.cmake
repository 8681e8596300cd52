# What `cmake --install` puts under the prefix: the public header, both
# libraries, a CMake package (find_package(sdpa) -> sdpa::sdpa,
# sdpa::sdpa_shared, sdpa::sdpa_static) and sdpa.pc for pkg-config.
include(CMakePackageConfigHelpers)

set(SDPA_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/sdpa" CACHE STRING
    "Where the CMake package files of sdpa are installed, relative to the prefix")

install(FILES "${PROJECT_SOURCE_DIR}/include/sdpa/sdpa.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/sdpa")

# Two export sets, so that a consumer of the shared library alone never needs
# the development files of Highway and oneTBB (see sdpa-config.cmake.in).
install(TARGETS sdpa_shared EXPORT sdpa-shared-targets
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(TARGETS sdpa_static EXPORT sdpa-static-targets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}")
foreach(kind shared static)
  install(EXPORT sdpa-${kind}-targets NAMESPACE sdpa::
          DESTINATION "${SDPA_INSTALL_CMAKEDIR}")
endforeach()

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/sdpa-config.cmake.in"
  "${PROJECT_BINARY_DIR}/sdpa-config.cmake"
  INSTALL_DESTINATION "${SDPA_INSTALL_CMAKEDIR}")
# SameMajorVersion matches SOVERSION: within 0.x the ABI only grows (new
# fields go at the end of structs, guarded by struct_size).
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/sdpa-config-version.cmake"
  VERSION "${PROJECT_VERSION}" COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/sdpa-config.cmake"
              "${PROJECT_BINARY_DIR}/sdpa-config-version.cmake"
        DESTINATION "${SDPA_INSTALL_CMAKEDIR}")

# sdpa.pc locates the prefix from its own place (${pcfiledir}), so the file
# stays right when the prefix is chosen at install time
# (`cmake --install build --prefix DIR`) or the tree is moved.
set(SDPA_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR
   IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(SDPA_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(SDPA_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(SDPA_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  # One ".." per component: lib/x86_64-linux-gnu/pkgconfig -> ../../..
  string(REGEX REPLACE "[^/]+" ".." SDPA_PC_UP "${SDPA_PC_DIR}")
  set(SDPA_PC_PREFIX "\${pcfiledir}/${SDPA_PC_UP}")
  set(SDPA_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(SDPA_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file("${CMAKE_CURRENT_LIST_DIR}/sdpa.pc.in"
               "${PROJECT_BINARY_DIR}/sdpa.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/sdpa.pc" DESTINATION "${SDPA_PC_DIR}")
