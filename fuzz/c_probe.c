/* The plain queries of the C API called the way a C caller may: with any
 * int as an sdpa_status (valid C; in C++ the conversion would be undefined
 * for values outside the enum's range). */
#include "sdpa/sdpa.h"

const char* sdpa_fuzz_status_string(int status) {
  return sdpa_status_string((sdpa_status)status);
}
