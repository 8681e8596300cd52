/* sdpa: scaled dot-product attention on CPUs.
 *
 *     O = softmax(Q·Kᵀ·scale + mask)·V
 *
 * The one public header of libsdpa. Plain C99, usable from C, C++ and any
 * language with a C FFI. No Highway or oneTBB type appears here.
 *
 * Conventions used throughout:
 * - Every function that can fail returns an sdpa_status. On failure nothing is
 *   written to any output, and sdpa_last_error() describes what was wrong,
 *   naming the argument.
 * - Sizes, shapes and strides are counted in elements, never in bytes.
 * - Functions never throw, never abort on bad input, and never write outside
 *   the memory described by `out` and `lse`.
 * - Thread safety: every function may be called from any thread at any time.
 *   One sdpa_context may be shared by many threads calling sdpa_attention at
 *   once. A context must not be destroyed while a call that uses it runs.
 */
#ifndef SDPA_SDPA_H_
#define SDPA_SDPA_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(SDPA_SHARED_LIBRARY)
#if defined(SDPA_BUILDING_LIBRARY)
#define SDPA_API __declspec(dllexport)
#else
#define SDPA_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define SDPA_API __attribute__((visibility("default")))
#else
#define SDPA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Library version: sdpa_version() returns MAJOR << 16 | MINOR << 8 | PATCH. */
#define SDPA_VERSION_MAJOR 0
#define SDPA_VERSION_MINOR 2
#define SDPA_VERSION_PATCH 0

/** What a call returned. SDPA_OK is 0; every other value is a failure. */
typedef enum sdpa_status {
  SDPA_OK = 0,
  /** An argument was NULL, out of range, or inconsistent with another. */
  SDPA_ERROR_INVALID_ARGUMENT = 1,
  /** Well-formed, but not supported by this build or this CPU (for example a
      dtype the kernels do not implement, or an ISA the CPU lacks). */
  SDPA_ERROR_UNSUPPORTED = 2,
  /** A workspace allocation failed. The process remains usable. */
  SDPA_ERROR_OUT_OF_MEMORY = 3,
  /** A bug in libsdpa: please report it with sdpa_last_error(). */
  SDPA_ERROR_INTERNAL = 4
} sdpa_status;

/** Element types of tensors. */
typedef enum sdpa_dtype {
  SDPA_DTYPE_F32 = 0,
  SDPA_DTYPE_BF16 = 1,
  SDPA_DTYPE_F16 = 2,
  SDPA_DTYPE_BOOL = 3 /* masks only: one byte, nonzero = keep */
} sdpa_dtype;

/** Causal masking and how the diagonal is aligned when Tq != Tk. */
typedef enum sdpa_causal {
  SDPA_CAUSAL_NONE = 0,
  SDPA_CAUSAL_TOP_LEFT = 1,    /* query i sees keys j <= i            */
  SDPA_CAUSAL_BOTTOM_RIGHT = 2 /* query i sees keys j <= i + Tk - Tq  */
} sdpa_causal;

/** A strided 4-D view [batch, heads, seq, dim] of memory the caller owns.
 *
 * Element (b, h, s, d) lives at
 *   (T*)data + b*strides[0] + h*strides[1] + s*strides[2] + d*strides[3].
 * Strides are in elements and may be zero (broadcast, inputs only) or
 * negative; any strides that address valid memory are accepted (BHSD, BSHD,
 * a head slice of a fused QKV buffer, ...). */
typedef struct sdpa_tensor {
  void* data;
  sdpa_dtype dtype;
  int64_t shape[4];
  int64_t strides[4]; /* elements */
} sdpa_tensor;

/** Arguments of one attention call.
 *
 * Diagonal of query i: d(i) = i for TOP_LEFT, i + Tk - Tq otherwise (NONE
 * included). Key j is visible to query i iff
 *   (causal == NONE or j <= d(i)) and
 *   (window_left < 0 or j >= d(i) - window_left) and
 *   (window_right < 0 or j <= d(i) + window_right) and the mask keeps it.
 * A query that sees no key gets output 0 and lse -inf.
 *
 * Non-finite inputs follow IEEE arithmetic on the definition, restricted to
 * the visible keys: a hidden key (causal, window, mask false or -inf) never
 * contributes, whatever its K, V or mask value. A visible key contributes
 * weight * V even when its weight is exactly 0 (score -inf from an infinite
 * K element), so Inf/NaN in its V row makes those output elements NaN. NaN
 * anywhere a query sees makes its row NaN; a query whose visible scores are
 * all -inf gets NaN. Scores are computed in F32: a score q·k·scale beyond
 * FLT_MAX is ±Inf. The output, a weighted mean of V rows, does not overflow
 * for V elements up to FLT_MAX (it may for a BF16/F16 out that cannot hold
 * it).
 *
 * New fields are only ever added at the end; struct_size tells the library
 * which fields the caller knows: a caller built against 0.1, whose struct
 * ends at window_right, gets flags 0. */
typedef struct sdpa_attention_args {
  uint32_t struct_size;    /* sizeof(sdpa_attention_args) */
  const sdpa_tensor* q;    /* [B, Hq,  Tq, Dk] */
  const sdpa_tensor* k;    /* [B, Hkv, Tk, Dk], Hq % Hkv == 0 */
  const sdpa_tensor* v;    /* [B, Hkv, Tk, Dv] */
  sdpa_tensor* out;        /* [B, Hq,  Tq, Dv] */
  const sdpa_tensor* mask; /* NULL, or F32 additive / BOOL keep-mask,
                              shape [B|1, Hq|1, Tq|1, Tk], a dimension of size 1
                              or stride 0 broadcasts */
  sdpa_tensor* lse;        /* NULL, or F32 [B, Hq, Tq, 1]: natural log of the
                              softmax denominator of the scaled scores
                              (log sum_j exp(s_ij)); -inf if fully masked */
  float scale;             /* 0: 1/sqrt(Dk) */
  sdpa_causal causal;
  int64_t window_left;  /* < 0: unbounded */
  int64_t window_right; /* < 0: unbounded */
  uint32_t flags;       /* SDPA_FLAG_* bits; 0: F32 arithmetic throughout
                           (since 0.2) */
} sdpa_attention_args;

/** Flags of sdpa_attention_args.
 *
 * SDPA_FLAG_BF16_WEIGHTS allows P·V on BF16 dot products, as PyTorch's and
 * OpenVINO's BF16 attention compute it: where v is BF16 with contiguous
 * elements along the head dim and the context's ISA has BF16 dot products
 * (AVX3_ZEN4), each softmax weight is rounded to BF16 (nearest even) for
 * its product with v: that changes a weight by at most 2^-8 of itself, so
 * an output element by at most 2^-8 of the largest |v| among the keys its
 * query sees, on top of the F32 arithmetic's rounding (P·V runs up to twice
 * as fast). The softmax denominator and lse stay F32. Blocks of keys whose
 * v holds Inf/NaN or nonzero elements below 2^-64 in magnitude (which the
 * BF16 dot instruction would flush) run on F32 anyway.
 * Ignored where it does not apply: another v type or ISA, and decoding
 * (few query rows per KV head), which reads v in place. */
#define SDPA_FLAG_BF16_WEIGHTS ((uint32_t)1 << 0)

/** Options of a context. Zero-initialise, set struct_size, change fields. */
typedef struct sdpa_context_options {
  uint32_t struct_size; /* sizeof(sdpa_context_options) */
  int32_t num_threads;  /* 0: all hardware threads; otherwise 1..4096 */
  uint64_t isa;         /* 0: the fastest available (the most capable, but
                           AVX3 over AVX3_ZEN4 where that CPU's BF16 dot
                           products are slow); else one SDPA_ISA_* bit */
} sdpa_context_options;

/** Instruction sets. These bits are libsdpa's own and stable across versions
 *  (they are not Highway's target bits). */
#define SDPA_ISA_SCALAR ((uint64_t)1 << 0)
#define SDPA_ISA_SSSE3 ((uint64_t)1 << 1)
#define SDPA_ISA_SSE4 ((uint64_t)1 << 2)
#define SDPA_ISA_AVX2 ((uint64_t)1 << 3)
#define SDPA_ISA_AVX3 ((uint64_t)1 << 4)
#define SDPA_ISA_AVX3_DL ((uint64_t)1 << 5)
/* AVX3 plus AVX512_BF16 (AMD Zen 4/5, Intel Cooper Lake and Sapphire
 * Rapids): with BF16 q and k, prefill computes q·kᵀ on BF16 dot products
 * (vdpbf16ps), each product exact in f32 as on AVX3; BF16 subnormals in q
 * and k count as 0 there. Otherwise the same code as AVX3. The default ISA
 * only on AMD's CPUs, whose dot instruction does twice an FMA's work per
 * cycle; the Intel Xeon measured runs it at half that rate, and AVX3 there
 * (ask for AVX3_ZEN4 by name to get it anyway). */
#define SDPA_ISA_AVX3_ZEN4 ((uint64_t)1 << 6)
#define SDPA_ISA_NEON ((uint64_t)1 << 16)
#define SDPA_ISA_SVE ((uint64_t)1 << 17)
#define SDPA_ISA_SVE2 ((uint64_t)1 << 18)
#define SDPA_ISA_SVE_256 ((uint64_t)1 << 19)
#define SDPA_ISA_SVE2_128 ((uint64_t)1 << 20)

/** Opaque execution context: a thread pool (oneTBB task arena) and a kernel
 *  table for one ISA. Creating one costs far more than an attention call on
 *  small shapes: create once, reuse. Safe to share between threads. */
typedef struct sdpa_context sdpa_context;

/**
 * Creates a context.
 * @param options NULL for defaults (all hardware threads, best ISA), or
 *        options with struct_size set.
 * @param out_context receives the new context; owned by the caller, release
 *        it with sdpa_context_destroy. Untouched on failure.
 * @returns SDPA_OK; SDPA_ERROR_INVALID_ARGUMENT for a NULL out_context, a bad
 *          struct_size, a thread count outside 0..4096 or an ISA value that is
 * not exactly one SDPA_ISA_* bit; SDPA_ERROR_UNSUPPORTED for an ISA this build
 * or CPU cannot run; SDPA_ERROR_OUT_OF_MEMORY. The environment variable
 * SDPA_ISA (an ISA name such as "AVX2") caps the default ISA when options->isa
 * is 0; it is meant for demos and benchmarks.
 */
SDPA_API sdpa_status sdpa_context_create(const sdpa_context_options* options,
                                         sdpa_context** out_context);

/** Destroys a context created by sdpa_context_create. NULL is fine. Must not
 *  be called while another thread uses the context. */
SDPA_API void sdpa_context_destroy(sdpa_context* context);

/** The SDPA_ISA_* bit the context runs; 0 for NULL. For NULL the default
 *  context's ISA is reported by sdpa_context_isa(sdpa_default_context()). */
SDPA_API uint64_t sdpa_context_isa(const sdpa_context* context);

/** The number of threads the context uses (>= 1); 0 for NULL. */
SDPA_API int32_t sdpa_context_num_threads(const sdpa_context* context);

/** The process-wide default context (all threads, best ISA), created on first
 *  use and never destroyed; NULL only if it could not be created. */
SDPA_API sdpa_context* sdpa_default_context(void);

/**
 * Computes attention: out = softmax(q·kᵀ·scale + mask)·v, with the causal and
 * window rules of sdpa_attention_args, and optionally the logsumexp.
 * @param context NULL for the process default context.
 * @param args see sdpa_attention_args. q, k, v and out may each be F32,
 *        BF16 or F16 (mixed freely: e.g. F32 q with a BF16 K/V cache);
 *        arithmetic is F32 throughout, and a BF16/F16 out is rounded to
 *        nearest even once. mask is F32 or BOOL; lse is F32. out and lse
 *        must not overlap q, k, v, mask or each other, and no two elements of
 *        out (or lse) may share memory.
 * @returns SDPA_OK, or a failure status with sdpa_last_error() naming the
 *          argument. On SDPA_ERROR_INVALID_ARGUMENT or SDPA_ERROR_UNSUPPORTED
 *          out and lse are not written. SDPA_ERROR_OUT_OF_MEMORY can happen
 *          after some rows were computed: out and lse are then unspecified
 *          (but nothing outside them is written).
 * Results are bitwise identical for any thread count, except when the
 * library splits the key range across threads (few query rows, long keys);
 * then they agree to rounding.
 */
SDPA_API sdpa_status sdpa_attention(sdpa_context* context,
                                    const sdpa_attention_args* args);

/** A static English description of a status ("invalid argument", ...). */
SDPA_API const char* sdpa_status_string(sdpa_status status);

/** Detail of the last failure of an sdpa_* call on this thread, or "" if the
 *  last call succeeded. Valid until the next sdpa_* call on this thread. */
SDPA_API const char* sdpa_last_error(void);

/** The SDPA_ISA_* bits compiled into this build AND supported by this CPU. */
SDPA_API uint64_t sdpa_available_isas(void);

/** The name of one SDPA_ISA_* bit ("AVX3", "AVX2", "SCALAR", ...), or
 *  "unknown" for anything else. Static storage. */
SDPA_API const char* sdpa_isa_name(uint64_t isa);

/** MAJOR << 16 | MINOR << 8 | PATCH of the library actually linked. */
SDPA_API uint32_t sdpa_version(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SDPA_SDPA_H_ */
