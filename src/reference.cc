// PLACEHOLDER (being replaced by the double-precision reference).
#include "src/reference.h"
