// Internal failures carry a status and a message to the C boundary, which
// turns them into a return value and sdpa_last_error(). Nothing else throws
// across module boundaries except std::bad_alloc (-> SDPA_ERROR_OUT_OF_MEMORY).
#ifndef SDPA_SRC_ERROR_H_
#define SDPA_SRC_ERROR_H_

#include <stdexcept>
#include <string>

#include "sdpa/sdpa.h"

namespace sdpa {

class Error : public std::runtime_error {
 public:
  Error(sdpa_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  sdpa_status status() const { return status_; }

 private:
  sdpa_status status_;
};

}  // namespace sdpa

#endif  // SDPA_SRC_ERROR_H_
