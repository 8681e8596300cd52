/* Calls the C API the way only C may: an sdpa_status holding any int (in
 * C++ a value outside the enumerators' range is undefined). */
#include "sdpa/sdpa.h"

const char* robustness_status_string(int status) {
  return sdpa_status_string((sdpa_status)status);
}
