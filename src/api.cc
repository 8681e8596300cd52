// PLACEHOLDER (being replaced by the full validating C boundary).
#include "sdpa/sdpa.h"
#include "src/context.h"
#include "src/dispatch.h"
#include "src/error.h"
#include "src/schedule.h"

extern "C" {
uint32_t sdpa_version(void) {
  return (SDPA_VERSION_MAJOR << 16) | (SDPA_VERSION_MINOR << 8) |
         SDPA_VERSION_PATCH;
}
uint64_t sdpa_available_isas(void) { return sdpa::AvailableIsas(); }
const char* sdpa_isa_name(uint64_t isa) { return sdpa::IsaName(isa); }
}
