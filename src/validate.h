// Checks the arguments of sdpa_attention and turns them into the normalised
// Problem the scheduler consumes. Nothing past this point re-checks them.
#ifndef SDPA_SRC_VALIDATE_H_
#define SDPA_SRC_VALIDATE_H_

#include "sdpa/sdpa.h"
#include "src/problem.h"

namespace sdpa {

// Throws sdpa::Error with SDPA_ERROR_INVALID_ARGUMENT (or
// SDPA_ERROR_UNSUPPORTED for a well-formed dtype the kernels lack) and a
// message naming the argument. Reads only the argument structs, never the
// tensor data, so a rejected call touches no caller memory.
Problem ValidateAttentionArgs(const sdpa_attention_args* args);

}  // namespace sdpa

#endif  // SDPA_SRC_VALIDATE_H_
