// The C boundary. Every entry point catches every exception: nothing may
// unwind into a C caller. Functions that return an sdpa_status set the
// thread-local last error ("" on success); the plain queries (names,
// versions, ISAs, sdpa_last_error itself) leave it alone, so that
// `printf("%s: %s", sdpa_status_string(s), sdpa_last_error())` works in
// either evaluation order.
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "sdpa/sdpa.h"
#include "src/context.h"
#include "src/dispatch.h"
#include "src/error.h"
#include "src/schedule.h"
#include "src/validate.h"

namespace {

// The most threads a context may ask for. oneTBB numbers arena slots with
// 16 bits (d1::slot_id): an arena of more than 65536 slots crashes when it
// is first used or destroyed (found by fuzz/attention_fuzzer.cc), and one of
// 65536 costs tens of MiB. oneTBB runs at most one worker per hardware
// thread anyway, so no machine gains from more than this.
constexpr int32_t kMaxThreads = 4096;

// The message for sdpa_last_error. `fallback` is used when even storing the
// message ran out of memory, so a failure never reads as success ("").
thread_local std::string last_error_message;
thread_local const char* last_error_fallback = nullptr;

void ClearLastError() noexcept {
  last_error_message.clear();
  last_error_fallback = nullptr;
}

sdpa_status Fail(sdpa_status status, const char* message) noexcept {
  try {
    last_error_message = message;
    last_error_fallback = nullptr;
  } catch (...) {
    last_error_fallback = "out of memory while recording the error message";
  }
  return status;
}

// Runs `body` and turns whatever it throws into a status and a message.
template <typename Body>
sdpa_status Guarded(Body&& body) noexcept {
  try {
    body();
    ClearLastError();
    return SDPA_OK;
  } catch (const sdpa::Error& error) {
    // An Error that claims success is a bug in libsdpa, not a success.
    return Fail(
        error.status() == SDPA_OK ? SDPA_ERROR_INTERNAL : error.status(),
        error.what());
  } catch (const std::bad_alloc&) {
    return Fail(SDPA_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& error) {
    try {
      return Fail(
          SDPA_ERROR_INTERNAL,
          (std::string("internal error (please report): ") + error.what())
              .c_str());
    } catch (...) {
      return Fail(SDPA_ERROR_INTERNAL, "internal error (please report)");
    }
  } catch (...) {
    return Fail(SDPA_ERROR_INTERNAL,
                "internal error (please report): unknown exception");
  }
}

// Why the default context is unavailable. DefaultContext() swallows the
// reason (it is built once per process), so the first time it is seen
// missing one more creation recovers it, and every later call reports the
// same reason even if the cause (say, SDPA_ISA) has changed since.
struct DefaultContextFailure {
  sdpa_status status = SDPA_ERROR_INTERNAL;
  std::string message;
};

const DefaultContextFailure& RecordDefaultContextFailure() {
  static const DefaultContextFailure failure = [] {
    DefaultContextFailure f;
    try {
      const std::string prefix =
          "the default context (context == NULL) could not be created: ";
      try {
        sdpa::CreateContext(0, 0);
        f.message = prefix + "it failed once and is not retried";
      } catch (const sdpa::Error& error) {
        f.status = error.status();
        f.message = prefix + error.what();
      } catch (const std::bad_alloc&) {
        f.status = SDPA_ERROR_OUT_OF_MEMORY;
        f.message = prefix + "out of memory";
      } catch (...) {
        f.status = SDPA_ERROR_INTERNAL;
        f.message = prefix + "unknown exception (please report)";
      }
    } catch (...) {
      f.status = SDPA_ERROR_OUT_OF_MEMORY;
      f.message.clear();  // the message itself could not be stored
    }
    return f;
  }();
  return failure;
}

sdpa_context* DefaultContextOrRecordWhy() {
  sdpa_context* context = sdpa::DefaultContext();
  if (context == nullptr) RecordDefaultContextFailure();
  return context;
}

// The context for a call with context == NULL; throws why it is missing.
sdpa_context& ResolveDefaultContext() {
  if (sdpa_context* context = DefaultContextOrRecordWhy()) return *context;
  const DefaultContextFailure& failure = RecordDefaultContextFailure();
  throw sdpa::Error(failure.status,
                    failure.message.empty()
                        ? "the default context could not be created"
                        : failure.message);
}

}  // namespace

extern "C" {

sdpa_status sdpa_context_create(const sdpa_context_options* options,
                                sdpa_context** out_context) {
  return Guarded([&] {
    if (out_context == nullptr) {
      throw sdpa::Error(SDPA_ERROR_INVALID_ARGUMENT, "out_context is NULL");
    }
    int32_t num_threads = 0;
    uint64_t isa = 0;
    if (options != nullptr) {
      if (options->struct_size < sizeof(sdpa_context_options)) {
        throw sdpa::Error(SDPA_ERROR_INVALID_ARGUMENT,
                          "options->struct_size is " +
                              std::to_string(options->struct_size) +
                              "; expected at least " +
                              std::to_string(sizeof(sdpa_context_options)) +
                              " (sizeof(sdpa_context_options))");
      }
      num_threads = options->num_threads;
      isa = options->isa;
      if (num_threads > kMaxThreads) {
        throw sdpa::Error(SDPA_ERROR_INVALID_ARGUMENT,
                          "options->num_threads is " +
                              std::to_string(num_threads) + "; at most " +
                              std::to_string(kMaxThreads) +
                              " threads are supported");
      }
    }
    *out_context = sdpa::CreateContext(num_threads, isa).release();
  });
}

void sdpa_context_destroy(sdpa_context* context) {
  try {
    delete context;
  } catch (...) {
    // Nothing a C caller could do with it; the context is gone either way.
  }
}

uint64_t sdpa_context_isa(const sdpa_context* context) {
  return context != nullptr ? context->isa : 0;
}

int32_t sdpa_context_num_threads(const sdpa_context* context) {
  return context != nullptr ? context->num_threads : 0;
}

sdpa_context* sdpa_default_context(void) {
  try {
    return DefaultContextOrRecordWhy();
  } catch (...) {
    return nullptr;
  }
}

sdpa_status sdpa_attention(sdpa_context* context,
                           const sdpa_attention_args* args) {
  return Guarded([&] {
    // Arguments first: a bad call is reported as such even when the default
    // context is unavailable.
    const sdpa::Problem problem = sdpa::ValidateAttentionArgs(args);
    sdpa_context& chosen =
        context != nullptr ? *context : ResolveDefaultContext();
    sdpa::RunAttention(chosen, problem);
  });
}

const char* sdpa_status_string(sdpa_status status) {
  // A C caller may pass any int. Reading a value outside the enumerators'
  // range through the C++ enum type is undefined (UBSan's enum check, found
  // by fuzz/attention_fuzzer.cc), so the bytes are read as an int.
  int value;
  static_assert(sizeof(value) == sizeof(status), "C enums are int-sized");
  std::memcpy(&value, &status, sizeof(value));
  switch (value) {
    case SDPA_OK:
      return "success";
    case SDPA_ERROR_INVALID_ARGUMENT:
      return "invalid argument";
    case SDPA_ERROR_UNSUPPORTED:
      return "unsupported";
    case SDPA_ERROR_OUT_OF_MEMORY:
      return "out of memory";
    case SDPA_ERROR_INTERNAL:
      return "internal error";
    default:
      return "unknown status";
  }
}

const char* sdpa_last_error(void) {
  return last_error_fallback != nullptr ? last_error_fallback
                                        : last_error_message.c_str();
}

uint64_t sdpa_available_isas(void) {
  try {
    return sdpa::AvailableIsas();
  } catch (...) {
    return 0;
  }
}

const char* sdpa_isa_name(uint64_t isa) {
  try {
    return sdpa::IsaName(isa);
  } catch (...) {
    return "unknown";
  }
}

uint32_t sdpa_version(void) {
  return (uint32_t{SDPA_VERSION_MAJOR} << 16) |
         (uint32_t{SDPA_VERSION_MINOR} << 8) | uint32_t{SDPA_VERSION_PATCH};
}

}  // extern "C"
