# Asserts that libsdpa.so exports exactly the functions sdpa.h declares with
# SDPA_API: nothing missing (a consumer would fail to link) and nothing more
# (leaked Highway/oneTBB/C++ symbols would clash with other copies of those
# libraries in the same process and become ABI by accident).
#
#   cmake -DLIBRARY=libsdpa.so -DHEADER=include/sdpa/sdpa.h [-DNM=nm]
#         -P SdpaCheckExports.cmake
foreach(var LIBRARY HEADER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "SdpaCheckExports: pass -D${var}=...")
  endif()
endforeach()
if(NOT NM)
  set(NM nm)
endif()

# Declared: "SDPA_API <return type> sdpa_name(" outside comments. The return
# type may not contain '(' or ';', which keeps a match inside one declaration.
file(READ "${HEADER}" header)
string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" header "${header}")
string(REGEX MATCHALL "SDPA_API[^;{(]*[ \t\r\n*](sdpa_[A-Za-z0-9_]+)[ \t\r\n]*\\("
       declarations "${header}")
set(declared "")
foreach(declaration IN LISTS declarations)
  string(REGEX REPLACE ".*[ \t\r\n*](sdpa_[A-Za-z0-9_]+)[ \t\r\n]*\\($" "\\1"
         name "${declaration}")
  list(APPEND declared "${name}")
endforeach()
list(REMOVE_DUPLICATES declared)
list(SORT declared)
list(LENGTH declared declared_count)
# A parser that finds nothing would make this test pass vacuously.
if(declared_count LESS 5)
  message(FATAL_ERROR "Found only ${declared_count} SDPA_API functions in "
          "${HEADER} (${declared}): the header parser is out of date.")
endif()

execute_process(COMMAND "${NM}" -D --defined-only "${LIBRARY}"
                OUTPUT_VARIABLE nm_output RESULT_VARIABLE nm_result
                ERROR_VARIABLE nm_error)
if(NOT nm_result EQUAL 0)
  message(FATAL_ERROR "${NM} -D --defined-only ${LIBRARY} failed: ${nm_error}")
endif()
# Lines are "<address> <type> <name>[@[@]version]".
string(REGEX REPLACE "\r?\n" ";" nm_lines "${nm_output}")
set(exported "")
foreach(line IN LISTS nm_lines)
  if(line MATCHES "^[0-9a-fA-F]* *[A-Za-z] ([^@ ]+)")
    list(APPEND exported "${CMAKE_MATCH_1}")
  endif()
endforeach()
list(REMOVE_DUPLICATES exported)
list(SORT exported)

set(missing ${declared})
list(REMOVE_ITEM missing ${exported})
set(extra ${exported})
list(REMOVE_ITEM extra ${declared})
if(missing OR extra)
  list(JOIN missing "\n  " missing_text)
  list(JOIN extra "\n  " extra_text)
  message(FATAL_ERROR "Exported symbols of ${LIBRARY} differ from ${HEADER}.\n"
          "Declared but not exported:\n  ${missing_text}\n"
          "Exported but not declared:\n  ${extra_text}")
endif()
message(STATUS "libsdpa.so exports exactly the ${declared_count} functions "
        "of sdpa.h")
