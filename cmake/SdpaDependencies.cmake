# Finds libsdpa's dependencies from the Debian 12 packages and, when one is
# missing, says which package brings it.
function(sdpa_require_package name debian_package)
  find_package(${name} ${ARGN} QUIET)
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR
      "sdpa needs ${name}, which was not found. On Debian/Ubuntu install it "
      "with: apt-get install ${debian_package}  (or run scripts/setup.sh)")
  endif()
endfunction()

sdpa_require_package(hwy libhwy-dev)
sdpa_require_package(TBB libtbb-dev)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
