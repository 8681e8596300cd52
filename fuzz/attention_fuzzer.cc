// libFuzzer target for the whole C API: sdpa_context_create with fuzzed
// options, then sdpa_attention with fuzzed argument structs.
//
// The input is decoded front to back (Decode below, whose format
// fuzz/make_corpus.py also writes; reading past the end gives zero bytes)
// into shapes, strides, dtypes, placements, masks, lse, scale, causal and
// window values, struct sizes and NULL pointers, and the options of a
// context. The harness owns every byte a descriptor may address:
//
// - A descriptor whose span (computed here, independently of the library, in
//   128-bit arithmetic) is small gets a malloc'd buffer of exactly that span,
//   so AddressSanitizer catches any access outside it, and the call really
//   runs.
// - A descriptor whose span is huge or overflows gets a fake address and is
//   only checked by the library's validator (sdpa::ValidateAttentionArgs),
//   which never dereferences tensor data. The harness never calls
//   sdpa_attention on memory it does not own.
//
// An independent oracle (Expect below) judges each call from the header's
// contract: valid (must be accepted), invalid (must be refused) or either
// (the library's documented conservative choices). Then:
// - refused: status is INVALID_ARGUMENT or UNSUPPORTED, sdpa_last_error() is
//   not empty, and no byte of any buffer changed;
// - accepted: only bytes of out/lse changed, every out/lse element was
//   written, sdpa_last_error() is "", and the result equals the float64
//   reference within the kernel tolerance (1e-5 of max|V|, 1e-5 of
//   max(1, |lse|), NaN where the reference is NaN) when the scores are well
//   conditioned; otherwise each output lies in the hull of the V rows.
// (A BF16/F16 output may also differ by its own rounding.) A violated
// expectation aborts with a description of the case.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sdpa/sdpa.h"
#include "src/reference.h"
#include "src/validate.h"

namespace {

// ---------------------------------------------------------------- decoding

// Bytes front to back; zeros past the end, so every prefix decodes.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  uint32_t U32() { return U16() | (static_cast<uint32_t>(U16()) << 16); }
  uint64_t U64() { return U32() | (static_cast<uint64_t>(U32()) << 32); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

template <typename T, size_t N>
T Pick(const T (&table)[N], uint8_t index) {
  return table[index % N];
}

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Sizes: mostly small, some around the kernels' block and tile edges.
int64_t SizeFromByte(uint8_t x, int64_t small_limit) {
  static const int64_t kEdges[] = {
      1,   2,   3,   4,   5,   7,   8,   9,   15,   16,   17,   31,
      32,  33,  47,  48,  63,  64,  65,  127, 128,  129,  191,  192,
      193, 255, 256, 257, 511, 512, 513, 640, 1023, 1024, 1025, 1100};
  if (x < 160) return 1 + x % small_limit;
  if (x < 224) return Pick(kEdges, x);
  return 1 + (x - 224) * 9;  // up to 280
}

// Values a fuzzed shape or stride entry may be replaced by.
int64_t InterestingI64(uint8_t x, Reader& in) {
  static const int64_t kValues[] = {0,
                                    -1,
                                    1,
                                    2,
                                    3,
                                    -2,
                                    kI64Max,
                                    kI64Min,
                                    kI64Max - 1,
                                    kI64Min + 1,
                                    int64_t{1} << 31,
                                    (int64_t{1} << 31) - 1,
                                    int64_t{1} << 32,
                                    int64_t{1} << 62,
                                    (int64_t{1} << 62) + 1,
                                    (int64_t{1} << 62) - 1,
                                    -(int64_t{1} << 62),
                                    int64_t{1} << 61,
                                    int64_t{1} << 40,
                                    -(int64_t{1} << 40),
                                    kI64Max / 2,
                                    kI64Max / 3,
                                    kI64Max / 4 + 1,
                                    1000003,
                                    65536,
                                    -65536,
                                    4096,
                                    100};
  if (x == 255) return static_cast<int64_t>(in.U64());
  return Pick(kValues, x);
}

enum Role { kQ, kK, kV, kMaskRole, kOut, kLse, kRoles };
const char* const kRoleNames[kRoles] = {"q", "k", "v", "mask", "out", "lse"};
bool IsInput(int role) { return role <= kMaskRole; }

// Bytes per element as the harness sizes buffers: the element size the
// dtype has, 4 for values that are not an sdpa_dtype.
size_t ElementBytes(int32_t dtype) {
  switch (dtype) {
    case SDPA_DTYPE_BF16:
    case SDPA_DTYPE_F16:
      return 2;
    case SDPA_DTYPE_BOOL:
      return 1;
    default:
      return 4;
  }
}

enum class DataMode { kOwn, kShare, kNull, kMisaligned };

struct TensorSpec {
  bool present = false;            // the pointer in args is not NULL
  int32_t dtype = SDPA_DTYPE_F32;  // raw value stored into the enum field
  int64_t shape[4] = {1, 1, 1, 1};
  int64_t strides[4] = {0, 0, 0, 0};
  DataMode data_mode = DataMode::kOwn;
  uint8_t share_target = 0;
  uint32_t share_offset = 0;
  int misalign = 0;
  uint8_t fake_base = 0;
  // Derived.
  size_t elem = 4;
  bool degenerate = false;            // some shape entry < 1: addresses nothing
  __int128 min_off = 0, max_off = 0;  // element offsets the view reaches
  __int128 elements = 0;              // product of the shape
  bool sane = false;  // small enough to back with real memory and enumerate
  int buffer = -1;    // index into Harness::buffers
  size_t byte_offset = 0;  // of data within its buffer
  uintptr_t address = 0;   // data as an integer (real or fake)
  sdpa_tensor view{};
};

// The harness's own arithmetic: saturating, 128-bit, shared with no library
// code.
constexpr __int128 kSaturate = static_cast<__int128>(1) << 100;
__int128 Clamp(__int128 x) {
  return x > kSaturate ? kSaturate : x < -kSaturate ? -kSaturate : x;
}

void ComputeSpan(TensorSpec& t) {
  t.degenerate = false;
  t.min_off = t.max_off = 0;
  t.elements = 1;
  for (int d = 0; d < 4; ++d) {
    if (t.shape[d] < 1) t.degenerate = true;
    if (t.shape[d] <= 1) continue;
    const __int128 reach =
        Clamp(static_cast<__int128>(t.shape[d] - 1) * t.strides[d]);
    (reach < 0 ? t.min_off : t.max_off) += reach;
    t.elements = t.elements > (kSaturate >> 63)
                     ? kSaturate
                     : Clamp(t.elements * t.shape[d]);
  }
  if (t.degenerate) t.elements = 0;
}

// Element offset of index (b, h, s, e) of a view; a size-1 dimension
// contributes nothing.
int64_t OffsetOf(const TensorSpec& t, const int64_t index[4]) {
  int64_t offset = 0;
  for (int d = 0; d < 4; ++d) {
    if (t.shape[d] != 1) offset += index[d] * t.strides[d];
  }
  return offset;
}

// Calls fn(index, element offset) for every element of a sane view.
template <typename Fn>
void ForEachElement(const TensorSpec& t, Fn fn) {
  int64_t i[4];
  for (i[0] = 0; i[0] < t.shape[0]; ++i[0])
    for (i[1] = 0; i[1] < t.shape[1]; ++i[1])
      for (i[2] = 0; i[2] < t.shape[2]; ++i[2])
        for (i[3] = 0; i[3] < t.shape[3]; ++i[3]) fn(i, OffsetOf(t, i));
}

struct Buffer {
  uint8_t* data = nullptr;
  size_t bytes = 0;
  int owner = -1;  // the role it was allocated for
};

// Limits of what the harness backs with real memory and actually runs.
constexpr __int128 kMaxBufferBytes = 4 << 20;
constexpr __int128 kMaxViewElements = 1 << 20;
constexpr double kMaxWork = 1 << 22;         // B*Hq*Tq*Tk*(Dk+Dv) per call
constexpr double kMaxCheckedWork = 1 << 21;  // ... compared with the reference
// sizeof(sdpa_attention_args) of version 0.1, which ended at window_right.
constexpr uint32_t kArgsSizeV01 = offsetof(sdpa_attention_args, flags);

// ---------------------------------------------------------------- failure

std::string g_case;  // description of the case being run, for failures

void Append(const char* format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  g_case += line;
}

[[noreturn]] void Violation(const char* file, int line, const char* condition,
                            const std::string& detail) {
  std::fprintf(stderr,
               "\n=== sdpa fuzz: contract violated at %s:%d\n  %s\n  %s\n"
               "--- case:\n%s\n",
               file, line, condition, detail.c_str(), g_case.c_str());
  std::abort();
}

std::string Format(const char* format, ...) {
  char text[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  return text;
}

#define FUZZ_EXPECT(condition, ...)                                   \
  do {                                                                \
    if (!(condition)) {                                               \
      Violation(__FILE__, __LINE__, #condition, Format(__VA_ARGS__)); \
    }                                                                 \
  } while (0)

// Stores any int into a C enum field (what a C caller may do).
template <typename Enum>
void StoreRaw(Enum* field, int32_t value) {
  static_assert(sizeof(Enum) == sizeof(int32_t), "int-sized C enums");
  std::memcpy(field, &value, sizeof(value));
}

// ---------------------------------------------------------------- contexts

std::vector<uint64_t> g_isas;  // available ISA bits
// Contexts reused across inputs: [isa index][threads - 1].
std::vector<sdpa_context*> g_cached;
constexpr int kCachedThreads = 3;

sdpa_context* CachedContext(uint8_t isa_byte, uint8_t threads_byte) {
  const size_t isa = isa_byte % g_isas.size();
  const int threads = 1 + threads_byte % kCachedThreads;
  sdpa_context*& context = g_cached[isa * kCachedThreads + (threads - 1)];
  if (context == nullptr) {
    sdpa_context_options options{};
    options.struct_size = sizeof(options);
    options.num_threads = threads;
    options.isa = g_isas[isa];
    const sdpa_status status = sdpa_context_create(&options, &context);
    FUZZ_EXPECT(status == SDPA_OK, "cached context: %s", sdpa_last_error());
  }
  return context;
}

// sdpa_context_create with fuzzed options. Returns a context to use and
// destroy, or nullptr (then the call goes to a cached one).
sdpa_context* FreshContext(Reader& in) {
  static const uint32_t kStructSizes[] = {sizeof(sdpa_context_options),
                                          0,
                                          4,
                                          8,
                                          sizeof(sdpa_context_options) - 1,
                                          sizeof(sdpa_context_options) + 8,
                                          0xFFFFFFFFu};
  static const int32_t kThreads[] = {0,
                                     1,
                                     2,
                                     3,
                                     4,
                                     8,
                                     64,
                                     4096,
                                     4097,
                                     65536,
                                     65537,
                                     -1,
                                     -2,
                                     std::numeric_limits<int32_t>::min(),
                                     std::numeric_limits<int32_t>::max(),
                                     1000000};
  const uint8_t flags = in.U8();
  const bool null_options = flags & 1;
  const bool null_out = flags & 2;
  const uint32_t struct_size =
      (flags & 4) ? Pick(kStructSizes, in.U8()) : sizeof(sdpa_context_options);
  const int32_t threads = Pick(kThreads, in.U8());
  const uint8_t isa_byte = in.U8();
  uint64_t isa;
  if (isa_byte < 128) {
    isa = isa_byte < 16 ? 0 : g_isas[isa_byte % g_isas.size()];
  } else if (isa_byte < 192) {
    isa = uint64_t{1} << (isa_byte % 64);
  } else {
    isa = in.U64();
  }
  Append(
      "context: fresh, options %s, out %s, struct_size %u, threads %d, "
      "isa 0x%" PRIx64 "\n",
      null_options ? "NULL" : "set", null_out ? "NULL" : "set", struct_size,
      threads, isa);

  // The options struct as a caller with struct_size bytes of it would have
  // it: a shorter struct ends where struct_size says (ASan sees overreads).
  const size_t full = sizeof(sdpa_context_options);
  const size_t bytes =
      struct_size < full ? std::max<size_t>(struct_size, 4) : full;
  sdpa_context_options filled{};
  filled.struct_size = struct_size;
  filled.num_threads = threads;
  filled.isa = isa;
  auto* options = static_cast<sdpa_context_options*>(std::malloc(bytes));
  std::memcpy(options, &filled, bytes);

  sdpa_context* const kUntouched = reinterpret_cast<sdpa_context*>(0x5a5a5a50);
  sdpa_context* context = kUntouched;
  const sdpa_status status = sdpa_context_create(
      null_options ? nullptr : options, null_out ? nullptr : &context);
  std::free(options);

  // The oracle, from sdpa.h.
  sdpa_status want = SDPA_OK;
  const bool one_bit = isa != 0 && (isa & (isa - 1)) == 0;
  if (null_out) {
    want = SDPA_ERROR_INVALID_ARGUMENT;
  } else if (!null_options) {
    // More threads than the library supports (4096, src/api.cc: oneTBB
    // arenas of more than 65536 slots crash) are refused like negative ones.
    if (struct_size < full || threads < 0 || threads > 4096) {
      want = SDPA_ERROR_INVALID_ARGUMENT;
    } else if (isa != 0 &&
               (!one_bit || std::strcmp(sdpa_isa_name(isa), "unknown") == 0)) {
      want = SDPA_ERROR_INVALID_ARGUMENT;
    } else if (isa != 0 && (sdpa_available_isas() & isa) == 0) {
      want = SDPA_ERROR_UNSUPPORTED;
    }
  }
  FUZZ_EXPECT(status == want, "sdpa_context_create returned %d, want %d (%s)",
              status, want, sdpa_last_error());
  if (status != SDPA_OK) {
    FUZZ_EXPECT(sdpa_last_error()[0] != '\0', "failure without a message");
    FUZZ_EXPECT(context == kUntouched, "out_context written on failure");
    return nullptr;
  }
  FUZZ_EXPECT(sdpa_last_error()[0] == '\0', "success with a message: %s",
              sdpa_last_error());
  if (null_options || isa == 0) {
    const uint64_t got = sdpa_context_isa(context);
    FUZZ_EXPECT(got != 0 && (got & (got - 1)) == 0 &&
                    (got & sdpa_available_isas()) != 0,
                "default ISA 0x%" PRIx64, got);
  } else {
    FUZZ_EXPECT(sdpa_context_isa(context) == isa, "context runs 0x%" PRIx64,
                sdpa_context_isa(context));
  }
  const int32_t want_threads = null_options || threads == 0 ? 0 : threads;
  if (want_threads > 0) {
    FUZZ_EXPECT(sdpa_context_num_threads(context) == want_threads,
                "context has %d threads", sdpa_context_num_threads(context));
  } else {
    FUZZ_EXPECT(sdpa_context_num_threads(context) >= 1, "no threads");
  }
  return context;
}

// ---------------------------------------------------------------- values

// splitmix64: the data values come from a seed the input chooses.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int64_t Int(int64_t lo, int64_t hi) {  // [lo, hi]
    return lo +
           static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  uint64_t state_;
};

// Value classes of Q, K, V: grids (so that products are exact in float),
// zeros of either sign, constants, and large values (ill-conditioned).
float DrawValue(uint8_t value_class, Random& rng) {
  switch (value_class % 8) {
    case 0:
      return static_cast<float>(rng.Int(-16, 16)) / 16.0f;  // |x| <= 1
    case 1:
      return static_cast<float>(rng.Int(-32, 32)) / 8.0f;  // |x| <= 4
    case 2:
      return 0.0f;
    case 3:
      return -0.0f;
    case 4:
      return 1.0f;
    case 5:
      return static_cast<float>(rng.Int(-3, 3));
    case 6:
      return static_cast<float>(rng.Int(-64, 64)) / 64.0f;
    default:
      return static_cast<float>(rng.Int(-16, 16)) * 64.0f;
  }
}

float SpecialValue(uint8_t kind) {
  static const float kValues[] = {kNaN,   kInf,    -kInf,           -0.0f,
                                  1e-40f, -1e-40f, 3.4e38f,         -3.4e38f,
                                  1e30f,  -1e30f,  1.17549435e-38f, 65504.0f,
                                  1e-30f, 100.0f,  -100.0f,         0.0f};
  return Pick(kValues, kind);
}

uint16_t Bf16Bits(float x) {  // values here are exact in bf16 or NaN/Inf
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return static_cast<uint16_t>(bits >> 16);
}

uint16_t F16Bits(float x) {  // round toward zero; good enough for data
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u;
  if (magnitude >= 0x47800000u) return sign | 0x7C00u;
  if (magnitude < 0x38800000u) return sign;
  return static_cast<uint16_t>(sign | ((magnitude - 0x38000000u) >> 13));
}

void StoreValue(uint8_t* at, int32_t dtype, float x) {
  if (dtype == SDPA_DTYPE_BF16) {
    const uint16_t bits = Bf16Bits(x);
    std::memcpy(at, &bits, 2);
  } else if (dtype == SDPA_DTYPE_F16) {
    const uint16_t bits = F16Bits(x);
    std::memcpy(at, &bits, 2);
  } else if (dtype == SDPA_DTYPE_BOOL) {
    *at = x != 0.0f ? 1 : 0;
  } else {
    std::memcpy(at, &x, 4);
  }
}

// ---------------------------------------------------------------- the case

// out/lse before the call: an all-ones NaN payload, which no arithmetic
// produces (x86's default NaN is 0xFFC00000) and no input holds.
constexpr uint8_t kSentinelByte = 0xFF;

enum class Verdict { kValid, kInvalid, kEither };

struct Case {
  // Context.
  sdpa_context* context = nullptr;
  bool fresh_context = false;
  // Arguments.
  bool args_null = false;
  uint32_t struct_size = sizeof(sdpa_attention_args);
  uint32_t arg_flags = 0;  // sdpa_attention_args.flags
  TensorSpec t[kRoles];
  float scale = 0.0f;
  int32_t causal = 0;
  int64_t window_left = -1, window_right = -1;
  // Data.
  uint64_t seed = 0;
  uint8_t value_class[3] = {0, 0, 0};
  uint8_t mask_drop = 0;
  struct Special {
    uint8_t role;
    uint32_t index;
    uint8_t kind;
  };
  std::vector<Special> specials;
  // Memory.
  std::vector<Buffer> buffers;
};

// Whether the library reads args->flags: a struct of version 0.1 ends
// before it.
bool FlagsRead(const Case& c) {
  return c.struct_size >= sizeof(sdpa_attention_args);
}

void DecodeTensor(Reader& in, int role, const int64_t logical[4],
                  TensorSpec& t) {
  const uint8_t flags = in.U8();
  // dtype.
  static const int32_t kRawDtypes[] = {-1,
                                       4,
                                       5,
                                       100,
                                       std::numeric_limits<int32_t>::min(),
                                       std::numeric_limits<int32_t>::max(),
                                       SDPA_DTYPE_BF16,
                                       SDPA_DTYPE_F16,
                                       SDPA_DTYPE_BOOL,
                                       SDPA_DTYPE_F32};
  switch (flags & 3) {
    case 2:
      // The other dtype the role may plausibly have.
      t.dtype = role == kMaskRole ? SDPA_DTYPE_BOOL
                : role == kLse
                    ? SDPA_DTYPE_BF16
                    : (in.U8() & 1 ? SDPA_DTYPE_BF16 : SDPA_DTYPE_F16);
      break;
    case 3:
      t.dtype = Pick(kRawDtypes, in.U8());
      break;
    default:
      t.dtype = SDPA_DTYPE_F32;
  }
  for (int d = 0; d < 4; ++d) t.shape[d] = logical[d];
  // Shape overrides: up to two entries.
  if (flags & 4) {
    const uint8_t which = in.U8();
    t.shape[which & 3] = InterestingI64(in.U8(), in);
    if (which & 4) t.shape[(which >> 3) & 3] = InterestingI64(in.U8(), in);
  }
  // Strides: dense in a permuted order, with padding, element stride and
  // reversed dimensions; then optional zeros and raw overrides.
  const uint8_t layout = in.U8();
  int order[4] = {0, 1, 2, 3};  // order[0] innermost
  {
    static const uint8_t kPerms[][4] = {
        {3, 2, 1, 0}, {3, 1, 2, 0}, {2, 3, 1, 0}, {3, 2, 0, 1},
        {1, 3, 2, 0}, {0, 1, 2, 3}, {3, 0, 2, 1}, {2, 1, 3, 0}};
    const uint8_t* perm = kPerms[layout & 7];
    for (int i = 0; i < 4; ++i) order[i] = perm[i];
  }
  const uint8_t padding = in.U8();
  const int64_t elem_stride = 1 + (padding & 1) * ((padding >> 1) & 3);
  const int64_t row_pad = (padding >> 3) & 3;
  const int64_t outer_pad = (padding >> 5) & 7;
  __int128 running = elem_stride;  // kept below 2^40
  for (int i = 0; i < 4; ++i) {
    const int d = order[i];
    t.strides[d] = static_cast<int64_t>(running);
    const int64_t size =
        t.shape[d] > 0 && t.shape[d] < (int64_t{1} << 24) ? t.shape[d] : 1;
    running *= size;
    if (i == 0) running += row_pad;
    if (i == 1) running += outer_pad;
    running = std::min<__int128>(running, static_cast<__int128>(1) << 40);
  }
  if (layout & 8) {  // reverse some dimensions
    const uint8_t reverse = in.U8();
    for (int d = 0; d < 4; ++d) {
      if (reverse & (1 << d)) t.strides[d] = -t.strides[d];
    }
  }
  if (layout & 16) {  // broadcast: zero strides
    const uint8_t zeros = in.U8();
    for (int d = 0; d < 4; ++d) {
      if (zeros & (1 << d)) t.strides[d] = 0;
    }
  }
  if (layout & 32) {  // raw stride values
    const uint8_t which = in.U8();
    t.strides[which & 3] = InterestingI64(in.U8(), in);
    if (which & 4) t.strides[(which >> 3) & 3] = InterestingI64(in.U8(), in);
  }
  if (layout & 64) {  // a small fuzzed stride (overlapping layouts)
    const uint8_t which = in.U8();
    t.strides[which & 3] = static_cast<int8_t>(in.U8());
  }
  // Placement.
  switch ((flags >> 3) & 3) {
    case 1:
      t.data_mode = DataMode::kShare;
      t.share_target = in.U8();
      t.share_offset = in.U16();
      break;
    case 2:
      t.data_mode = (flags & 0x80) ? DataMode::kNull : DataMode::kMisaligned;
      t.misalign = 1 + in.U8() % 3;
      break;
    default:
      t.data_mode = DataMode::kOwn;
  }
  t.fake_base = (flags >> 5) & 3;
  t.elem = ElementBytes(t.dtype);
  ComputeSpan(t);
  const __int128 span_bytes = (t.max_off - t.min_off + 1) * t.elem;
  t.sane = !t.degenerate && span_bytes <= kMaxBufferBytes &&
           t.elements <= kMaxViewElements;
}

void Decode(Reader& in, Case& c) {
  static const uint32_t kStructSizes[] = {0,
                                          4,
                                          8,
                                          sizeof(sdpa_attention_args) - 1,
                                          sizeof(sdpa_attention_args) - 8,
                                          sizeof(sdpa_attention_args) + 1,
                                          sizeof(sdpa_attention_args) + 64,
                                          0xFFFFFFFFu,
                                          kArgsSizeV01,
                                          kArgsSizeV01 + 4};
  static const uint32_t kArgFlags[] = {SDPA_FLAG_BF16_WEIGHTS, 2u, 0x80000000u,
                                       SDPA_FLAG_BF16_WEIGHTS | 4u};
  const uint8_t flags = in.U8();
  c.args_null = (flags & 0x81) == 0x81;  // rare: two bits
  const bool q_null = flags & 2, k_null = flags & 4, v_null = flags & 8;
  const bool out_null = flags & 16;
  const bool want_mask = flags & 32, want_lse = flags & 64;
  const uint8_t more = in.U8();
  if (more & 1) c.struct_size = Pick(kStructSizes, in.U8());
  if (more & 2) c.arg_flags = Pick(kArgFlags, in.U8());

  // Context.
  const uint8_t context_mode = in.U8();
  if (context_mode % 4 == 1) {
    c.context = nullptr;  // the default context
    Append("context: default (NULL)\n");
  } else if (context_mode % 4 == 3) {
    c.context = FreshContext(in);
    c.fresh_context = c.context != nullptr;
    if (c.context == nullptr) c.context = CachedContext(0, 0);
  } else {
    const uint8_t isa = in.U8(), threads = in.U8();
    c.context = CachedContext(isa, threads);
    Append("context: cached, isa %s, threads %d\n",
           sdpa_isa_name(sdpa_context_isa(c.context)),
           sdpa_context_num_threads(c.context));
  }

  // Logical sizes.
  const int64_t batch = 1 + in.U8() % 3;
  const int64_t kv_heads = 1 + in.U8() % 3;
  const int64_t group = 1 + in.U8() % 4;
  const int64_t q_heads = kv_heads * group;
  const int64_t q_len = SizeFromByte(in.U8(), 40);
  const int64_t kv_len = SizeFromByte(in.U8(), 40);
  const int64_t head_dim = SizeFromByte(in.U8(), 40);
  const int64_t value_dim = SizeFromByte(in.U8(), 40);
  const uint8_t mask_bcast = in.U8();
  const int64_t shapes[kRoles][4] = {
      {batch, q_heads, q_len, head_dim},
      {batch, kv_heads, kv_len, head_dim},
      {batch, kv_heads, kv_len, value_dim},
      {mask_bcast & 1 ? 1 : batch, mask_bcast & 2 ? 1 : q_heads,
       mask_bcast & 4 ? 1 : q_len, kv_len},
      {batch, q_heads, q_len, value_dim},
      {batch, q_heads, q_len, 1}};
  const bool present[kRoles] = {!q_null,   !k_null,   !v_null,
                                want_mask, !out_null, want_lse};
  for (int role = 0; role < kRoles; ++role) {
    c.t[role].present = present[role];
    if (present[role]) DecodeTensor(in, role, shapes[role], c.t[role]);
  }
  if (c.t[kMaskRole].present && c.t[kMaskRole].dtype == SDPA_DTYPE_F32 &&
      (mask_bcast & 8)) {
    c.t[kMaskRole].dtype = SDPA_DTYPE_BOOL;
    c.t[kMaskRole].elem = 1;
    ComputeSpan(c.t[kMaskRole]);
    const __int128 span_bytes =
        c.t[kMaskRole].max_off - c.t[kMaskRole].min_off + 1;
    c.t[kMaskRole].sane = !c.t[kMaskRole].degenerate &&
                          span_bytes <= kMaxBufferBytes &&
                          c.t[kMaskRole].elements <= kMaxViewElements;
  }

  // Scalars.
  static const float kScales[] = {
      0.0f,   -0.0f,  0.125f,  0.25f, 1.0f, -1.0f, 0.5f,    2.0f,    1e30f,
      1e-30f, 1e-45f, 3.4e38f, kNaN,  kInf, -kInf, -0.125f, 0.0625f, 1e10f};
  const uint8_t scale_byte = in.U8();
  if (scale_byte == 255) {
    const uint32_t bits = in.U32();
    std::memcpy(&c.scale, &bits, 4);
  } else {
    c.scale = scale_byte < 128
                  ? (scale_byte % 3 == 0 ? 0.0f : 0.125f)
                  : Pick(kScales, static_cast<uint8_t>(scale_byte - 128));
  }
  const uint8_t causal_byte = in.U8();
  static const int32_t kRawCausal[] = {3, -1, 100,
                                       std::numeric_limits<int32_t>::min(),
                                       std::numeric_limits<int32_t>::max()};
  c.causal =
      causal_byte < 240 ? causal_byte % 3 : Pick(kRawCausal, causal_byte);
  auto window = [&](uint8_t x) -> int64_t {
    if (x < 96) return -1;
    if (x < 160) return x % 8;
    if (x < 200) return x % 64;
    switch (x % 8) {
      case 0:
        return q_len;
      case 1:
        return kv_len;
      case 2:
        return kv_len - 1;
      case 3:
        return kI64Max;
      case 4:
        return kI64Min;
      case 5:
        return -2;
      case 6:
        return int64_t{1} << 62;
      default:
        return kI64Max - q_len;
    }
  };
  c.window_left = window(in.U8());
  c.window_right = window(in.U8());

  // Data.
  c.seed = in.U64();
  for (uint8_t& value_class : c.value_class) value_class = in.U8();
  c.mask_drop = in.U8();
  const int specials = in.U8() % 5;
  for (int i = 0; i < specials; ++i) {
    Case::Special s;
    s.role = in.U8() % 4;
    s.index = in.U32();
    s.kind = in.U8();
    c.specials.push_back(s);
  }

  Append(
      "args: %s, struct_size %u, flags 0x%x, scale %g, causal %d, "
      "window %" PRId64 ", %" PRId64 "\n",
      c.args_null ? "NULL" : "set", c.struct_size, c.arg_flags, c.scale,
      c.causal, c.window_left, c.window_right);
  for (int role = 0; role < kRoles; ++role) {
    const TensorSpec& t = c.t[role];
    if (!t.present) {
      Append("%s: NULL\n", kRoleNames[role]);
      continue;
    }
    Append("%s: dtype %d shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
           "] strides [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
           "] data mode %d%s\n",
           kRoleNames[role], t.dtype, t.shape[0], t.shape[1], t.shape[2],
           t.shape[3], t.strides[0], t.strides[1], t.strides[2], t.strides[3],
           static_cast<int>(t.data_mode), t.sane ? "" : " (not backed)");
  }
  Append("data: seed %" PRIu64 " classes %d %d %d, mask drop %d, %zu specials",
         c.seed, c.value_class[0] % 8, c.value_class[1] % 8,
         c.value_class[2] % 8, c.mask_drop, c.specials.size());
  for (const Case::Special& s : c.specials) {
    Append(" [%s #%u = %g]", kRoleNames[s.role], s.index, SpecialValue(s.kind));
  }
  Append("\n");
}

// Gives every present tensor a data pointer: real memory for sane views, a
// fake (never dereferenced) address otherwise.
void Place(Case& c) {
  static const uintptr_t kFakeBases[] = {uintptr_t{1} << 44, uintptr_t{0x1000},
                                         ~uintptr_t{0} - 0xFFF,
                                         uintptr_t{1} << 62};
  for (int role = 0; role < kRoles; ++role) {
    TensorSpec& t = c.t[role];
    if (!t.present) continue;
    if (t.data_mode == DataMode::kNull) {
      t.address = 0;
      continue;
    }
    const size_t span_bytes =
        t.sane ? static_cast<size_t>((t.max_off - t.min_off + 1) * t.elem) : 0;
    const size_t lead = t.sane ? static_cast<size_t>(-t.min_off * t.elem) : 0;
    if (!t.sane) {
      // Distinct fake bases per role, 64-byte aligned, unless misaligned.
      t.address = kFakeBases[t.fake_base] + static_cast<uintptr_t>(role) *
                                                (uintptr_t{1} << 36) *
                                                (t.fake_base != 2);
      if (t.fake_base == 2) t.address -= static_cast<uintptr_t>(role) << 12;
      if (t.data_mode == DataMode::kMisaligned) t.address += t.misalign;
      continue;
    }
    if (t.data_mode == DataMode::kShare && !c.buffers.empty()) {
      const size_t target = t.share_target % c.buffers.size();
      const Buffer& b = c.buffers[target];
      if (b.bytes >= span_bytes) {
        size_t room = b.bytes - span_bytes;
        size_t shift = (t.share_offset % (room + 1)) / t.elem * t.elem;
        t.buffer = static_cast<int>(target);
        t.byte_offset = shift + lead;
        t.address = reinterpret_cast<uintptr_t>(b.data) + t.byte_offset;
        continue;
      }
    }
    const size_t extra = t.data_mode == DataMode::kMisaligned ? t.misalign : 0;
    Buffer b;
    b.bytes = span_bytes + extra;
    b.data = static_cast<uint8_t*>(std::malloc(b.bytes));
    // Inputs' gaps hold NaN (a kernel that reads them poisons its result);
    // outputs hold the sentinel.
    if (IsInput(role) && t.elem == 4) {
      for (size_t i = 0; i + 4 <= b.bytes; i += 4) {
        std::memcpy(b.data + i, &kNaN, 4);
      }
      std::memset(b.data + b.bytes / 4 * 4, 0x7F, b.bytes % 4);
    } else {
      std::memset(b.data, IsInput(role) ? 0x7F : kSentinelByte, b.bytes);
    }
    b.owner = role;
    t.buffer = static_cast<int>(c.buffers.size());
    t.byte_offset = lead + extra;
    t.address = reinterpret_cast<uintptr_t>(b.data) + t.byte_offset;
    c.buffers.push_back(b);
  }
  for (int role = 0; role < kRoles; ++role) {
    TensorSpec& t = c.t[role];
    if (!t.present) continue;
    t.view.data = reinterpret_cast<void*>(t.address);
    StoreRaw(&t.view.dtype, t.dtype);
    for (int d = 0; d < 4; ++d) {
      t.view.shape[d] = t.shape[d];
      t.view.strides[d] = t.strides[d];
    }
  }
}

// Writes the input values through the views (q, k, v, mask in that order;
// a later view sharing memory overwrites an earlier one, and the reference
// reads the same memory).
void FillInputs(Case& c) {
  Random rng(c.seed);
  for (int role = kQ; role <= kMaskRole; ++role) {
    TensorSpec& t = c.t[role];
    if (!t.present || !t.sane || t.buffer < 0) continue;
    uint8_t* base = c.buffers[t.buffer].data + t.byte_offset;
    const uint8_t drop = c.mask_drop;
    ForEachElement(t, [&](const int64_t*, int64_t offset) {
      uint8_t* at = base + offset * static_cast<int64_t>(t.elem);
      if (role != kMaskRole) {
        StoreValue(at, t.dtype, DrawValue(c.value_class[role], rng));
        return;
      }
      // Masks: drop (-inf / false) with probability drop/256, mostly.
      const bool dropped = (rng.Next() & 255) < drop;
      if (t.dtype == SDPA_DTYPE_BOOL) {
        *at = dropped ? 0 : static_cast<uint8_t>(1 + rng.Int(0, 3) * 85);
      } else {
        const float x =
            dropped ? -kInf : static_cast<float>(rng.Int(-32, 32)) / 16.0f;
        StoreValue(at, t.dtype, x);
      }
    });
  }
  for (const Case::Special& s : c.specials) {
    TensorSpec& t = c.t[s.role];
    if (!t.present || !t.sane || t.buffer < 0 || t.elements <= 0) continue;
    // The s.index-th element of the view.
    int64_t remaining = static_cast<int64_t>(s.index % t.elements);
    int64_t index[4];
    for (int d = 3; d >= 0; --d) {
      index[d] = remaining % t.shape[d];
      remaining /= t.shape[d];
    }
    uint8_t* at = c.buffers[t.buffer].data + t.byte_offset +
                  OffsetOf(t, index) * static_cast<int64_t>(t.elem);
    if (t.dtype == SDPA_DTYPE_BOOL) {
      static const uint8_t kBytes[] = {0, 1, 0xFF, 0x80, 2};
      *at = Pick(kBytes, s.kind);
    } else {
      StoreValue(at, t.dtype, SpecialValue(s.kind));
    }
  }
}

// ---------------------------------------------------------------- oracle

// Representable as the library promises to accept: offsets and byte
// offsets in int64, addresses in [0, UINTPTR_MAX].
bool ExtentRepresentable(const TensorSpec& t) {
  const __int128 lo = t.min_off * static_cast<__int128>(t.elem);
  const __int128 hi = t.max_off * static_cast<__int128>(t.elem) +
                      static_cast<__int128>(t.elem) - 1;
  if (t.min_off < kI64Min || t.max_off > kI64Max) return false;
  if (lo < kI64Min || hi > kI64Max) return false;
  const __int128 first = static_cast<__int128>(t.address) + lo;
  const __int128 last = static_cast<__int128>(t.address) + hi;
  return first >= 0 && last <= static_cast<__int128>(~uintptr_t{0});
}

struct Hull {
  __int128 first, last;  // bytes
};
Hull HullOf(const TensorSpec& t) {
  return {static_cast<__int128>(t.address) + t.min_off * t.elem,
          static_cast<__int128>(t.address) + t.max_off * t.elem + t.elem - 1};
}

// The library's documented sufficient condition for distinct elements
// (sdpa.h: no two elements of out may share memory; src/tensor_extent.h
// spells out the rule), written again here.
bool DistinctBySortedStrides(const TensorSpec& t) {
  std::vector<std::pair<unsigned __int128, unsigned __int128>> dims;
  for (int d = 0; d < 4; ++d) {
    if (t.shape[d] <= 1) continue;
    const __int128 s = t.strides[d];
    dims.push_back({static_cast<unsigned __int128>(s < 0 ? -s : s),
                    static_cast<unsigned __int128>(t.shape[d])});
  }
  std::sort(dims.begin(), dims.end());
  unsigned __int128 spanned = 0;
  for (const auto& [stride, size] : dims) {
    if (stride <= spanned) return false;
    spanned += (size - 1) * stride;
    if (spanned > (static_cast<unsigned __int128>(1) << 100)) return false;
  }
  return true;
}

// Exact: no two elements of a sane view share an offset.
bool DistinctExactly(const TensorSpec& t) {
  const size_t count = static_cast<size_t>(t.max_off - t.min_off + 1);
  std::vector<bool> seen(count, false);
  bool distinct = true;
  ForEachElement(t, [&](const int64_t*, int64_t offset) {
    const size_t at = static_cast<size_t>(offset - t.min_off);
    if (seen[at]) distinct = false;
    seen[at] = true;
  });
  return distinct;
}

// Byte-exact overlap of two sane views placed in the same buffer.
bool SharesBytes(const Case& c, const TensorSpec& a, const TensorSpec& b) {
  if (a.buffer < 0 || a.buffer != b.buffer) return false;
  std::vector<bool> used(c.buffers[a.buffer].bytes, false);
  ForEachElement(a, [&](const int64_t*, int64_t offset) {
    const int64_t at = static_cast<int64_t>(a.byte_offset) +
                       offset * static_cast<int64_t>(a.elem);
    for (size_t i = 0; i < a.elem; ++i)
      used[static_cast<size_t>(at) + i] = true;
  });
  bool shared = false;
  ForEachElement(b, [&](const int64_t*, int64_t offset) {
    const int64_t at = static_cast<int64_t>(b.byte_offset) +
                       offset * static_cast<int64_t>(b.elem);
    for (size_t i = 0; i < b.elem; ++i) {
      if (used[static_cast<size_t>(at) + i]) shared = true;
    }
  });
  return shared;
}

// Combines verdicts: any invalid wins, then any either.
void Demote(Verdict& v, Verdict to) {
  if (v == Verdict::kInvalid) return;
  if (to == Verdict::kInvalid || to == Verdict::kEither) v = to;
}

// What sdpa.h lets the library do with this call, and why (for messages).
Verdict Expect(const Case& c, std::string* why) {
  Verdict v = Verdict::kValid;
  auto invalid = [&](const std::string& reason) {
    if (v != Verdict::kInvalid) *why = reason;
    v = Verdict::kInvalid;
  };
  auto either = [&](const std::string& reason) {
    if (v == Verdict::kValid) *why = reason;
    Demote(v, Verdict::kEither);
  };
  if (c.args_null) invalid("args is NULL");
  if (c.struct_size != kArgsSizeV01 &&
      c.struct_size < sizeof(sdpa_attention_args)) {
    invalid("struct_size");
  }
  if (FlagsRead(c) && (c.arg_flags & ~SDPA_FLAG_BF16_WEIGHTS) != 0) {
    invalid("flags");
  }
  for (int role = 0; role < kRoles; ++role) {
    const TensorSpec& t = c.t[role];
    const std::string name = kRoleNames[role];
    if (!t.present) {
      if (role != kMaskRole && role != kLse) invalid(name + " is NULL");
      continue;
    }
    // dtypes.
    const bool f32 = t.dtype == SDPA_DTYPE_F32;
    const bool half = t.dtype == SDPA_DTYPE_BF16 || t.dtype == SDPA_DTYPE_F16;
    if (role == kMaskRole) {
      if (!f32 && t.dtype != SDPA_DTYPE_BOOL) invalid("mask dtype");
    } else if (role == kLse) {
      if (!f32) invalid("lse dtype");
    } else if (!f32 && !half) {
      invalid(name + " dtype");
    }
    if (t.address == 0) invalid(name + "->data is NULL");
    if (t.address % t.elem != 0) invalid(name + " misaligned");
    for (int d = 0; d < 4; ++d) {
      if (t.shape[d] < 1 || t.shape[d] > (int64_t{1} << 62)) {
        invalid(name + " size out of [1, 2^62]");
      }
    }
    if (!t.degenerate && !ExtentRepresentable(t)) invalid(name + " extent");
  }
  // Shapes agree.
  const TensorSpec &q = c.t[kQ], &k = c.t[kK], &vv = c.t[kV], &o = c.t[kOut];
  if (q.present && k.present && vv.present && o.present) {
    auto same = [&](const TensorSpec& a, int da, const TensorSpec& b, int db) {
      if (a.shape[da] != b.shape[db]) invalid("shapes disagree");
    };
    same(k, 0, q, 0), same(vv, 0, q, 0), same(o, 0, q, 0);
    if (k.shape[1] < 1 || q.shape[1] % k.shape[1] != 0) {
      invalid("Hq % Hkv");
    }
    same(vv, 1, k, 1), same(o, 1, q, 1), same(vv, 2, k, 2), same(o, 2, q, 2);
    same(k, 3, q, 3), same(o, 3, vv, 3);
    const TensorSpec& m = c.t[kMaskRole];
    if (m.present) {
      for (int d = 0; d < 3; ++d) {
        if (m.shape[d] != 1 && m.shape[d] != q.shape[d]) invalid("mask shape");
      }
      if (m.shape[3] != k.shape[2]) invalid("mask keys");
    }
    const TensorSpec& l = c.t[kLse];
    if (l.present) {
      for (int d = 0; d < 3; ++d) {
        if (l.shape[d] != q.shape[d]) invalid("lse shape");
      }
      if (l.shape[3] != 1) invalid("lse shape[3]");
    }
  }
  if (!std::isfinite(c.scale)) invalid("scale not finite");
  if (c.causal < 0 || c.causal > 2) invalid("causal value");
  // Outputs: distinct elements, no overlap with anything else.
  for (int role : {kOut, kLse}) {
    const TensorSpec& t = c.t[role];
    if (!t.present || t.degenerate || t.address == 0) continue;
    const bool rule = DistinctBySortedStrides(t);
    if (t.sane && t.buffer >= 0 && !DistinctExactly(t)) {
      invalid(std::string(kRoleNames[role]) + " elements share memory");
    } else if (!rule) {
      either(std::string(kRoleNames[role]) +
             " elements distinct but outside the documented rule");
    }
    for (int other = 0; other < kRoles; ++other) {
      const TensorSpec& u = c.t[other];
      if (other == role || !u.present || u.degenerate || u.address == 0) {
        continue;
      }
      if (other == kOut && role == kLse) continue;  // checked from out
      const Hull a = HullOf(t), b = HullOf(u);
      if (a.first > b.last || b.first > a.last) continue;
      if (t.sane && u.sane && SharesBytes(c, t, u)) {
        invalid(std::string(kRoleNames[role]) + " overlaps " +
                kRoleNames[other]);
      } else {
        either(std::string(kRoleNames[role]) + " interleaves with " +
               kRoleNames[other]);
      }
    }
  }
  return v;
}

// ---------------------------------------------------------------- checks

double Work(const Case& c) {
  const TensorSpec &q = c.t[kQ], &k = c.t[kK], &v = c.t[kV];
  return static_cast<double>(q.shape[0]) * static_cast<double>(q.shape[1]) *
         static_cast<double>(q.shape[2]) * static_cast<double>(k.shape[2]) *
         (static_cast<double>(q.shape[3]) + static_cast<double>(v.shape[3]));
}

bool AllSane(const Case& c) {
  for (const TensorSpec& t : c.t) {
    if (t.present && !t.sane && t.address != 0) return false;
  }
  return true;
}

// Element i of an F32, BF16 or F16 view, decoded here (not with the
// library's conversions).
double ReadElem(const TensorSpec& t, const uint8_t* base, const int64_t i[4]) {
  const uint8_t* at = base + OffsetOf(t, i) * static_cast<int64_t>(t.elem);
  if (t.dtype == SDPA_DTYPE_F32) {
    float x;
    std::memcpy(&x, at, 4);
    return x;
  }
  uint16_t h;
  std::memcpy(&h, at, 2);
  if (t.dtype == SDPA_DTYPE_BF16) {
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float x;
    std::memcpy(&x, &bits, 4);
    return x;
  }
  const int exponent = (h >> 10) & 31, mantissa = h & 1023;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exponent == 31) return mantissa ? kNaN : sign * kInf;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

// How far a correctly rounded output of `dtype` may be from the exact value
// `x`: half an ulp (unit roundoff u = 2^-p of |x|, plus half the smallest
// subnormal); 0 for F32, whose rounding the kernel tolerance covers.
double OutputRounding(int32_t dtype, double x) {
  if (dtype == SDPA_DTYPE_BF16) return std::ldexp(std::fabs(x), -8) + 0x1p-134;
  if (dtype == SDPA_DTYPE_F16) return std::ldexp(std::fabs(x), -11) + 0x1p-25;
  return 0.0;
}

// After a successful call: compare with the float64 reference.
void CheckAgainstReference(Case& c, const sdpa_attention_args& args) {
  const TensorSpec &q = c.t[kQ], &k = c.t[kK], &v = c.t[kV], &o = c.t[kOut];
  const TensorSpec& m = c.t[kMaskRole];
  const TensorSpec& l = c.t[kLse];
  const uint8_t* qb = c.buffers[q.buffer].data + q.byte_offset;
  const uint8_t* kb = c.buffers[k.buffer].data + k.byte_offset;
  const uint8_t* vb = c.buffers[v.buffer].data + v.byte_offset;
  const uint8_t* ob = c.buffers[o.buffer].data + o.byte_offset;

  // Conditioning: a bound on |score| (natural units) and whether every
  // input is finite.
  bool finite = true;
  double max_q_row = 0, max_k = 0, v_scale = 0, max_mask = 0;
  ForEachElement(q, [&](const int64_t* i, int64_t) {
    if (i[3] != 0) return;
    double row = 0;
    for (int64_t d = 0; d < q.shape[3]; ++d) {
      const int64_t j[4] = {i[0], i[1], i[2], d};
      const double x = ReadElem(q, qb, j);
      if (!std::isfinite(x)) finite = false;
      row += std::fabs(x);
    }
    max_q_row = std::max(max_q_row, row);
  });
  // Largest |element| of a tensor among its finite ones.
  auto max_abs = [&](const TensorSpec& t, const uint8_t* base) {
    double largest = 0;
    ForEachElement(t, [&](const int64_t* i, int64_t) {
      const double x = ReadElem(t, base, i);
      if (!std::isfinite(x))
        finite = false;
      else
        largest = std::max(largest, std::fabs(x));
    });
    return largest;
  };
  max_k = max_abs(k, kb);
  v_scale = max_abs(v, vb);
  if (m.present && m.dtype == SDPA_DTYPE_F32) {
    const uint8_t* mb = c.buffers[m.buffer].data + m.byte_offset;
    ForEachElement(m, [&](const int64_t* i, int64_t) {
      const double x = ReadElem(m, mb, i);
      if (std::isnan(x) || x == kInf)
        finite = false;
      else if (x != -kInf)
        max_mask = std::max(max_mask, std::fabs(x));
    });
  }
  v_scale = std::max(v_scale, 1e-30);
  const double scale = c.scale != 0.0f
                           ? std::fabs(double{c.scale})
                           : 1.0 / std::sqrt(static_cast<double>(q.shape[3]));
  const double score_bound = scale * max_q_row * max_k + max_mask;
  // fp32 scores of magnitude <= 8 are accurate to a few 1e-6; beyond that
  // the kernel's float rounding of the scores (not a bug) can exceed the
  // tolerance, and only the hull property is checked.
  const bool well_conditioned = score_bound <= 8.0;
  // No overflow of the float-domain scores.
  const bool in_float_range = score_bound * 1.4427 < 1e30;

  std::vector<double> want_out, want_lse;
  sdpa::ReferenceAttention(args, &want_out, &want_lse);
  // SDPA_FLAG_BF16_WEIGHTS with BF16 V may round each weight to BF16: up
  // to 2^-8 of max|V| more (sdpa.h).
  const double kTolerance =
      1e-5 + (FlagsRead(c) && (c.arg_flags & SDPA_FLAG_BF16_WEIGHTS) != 0 &&
                      v.dtype == SDPA_DTYPE_BF16
                  ? 0x1p-8
                  : 0.0);
  const int64_t dv = o.shape[3];
  size_t row = 0;
  ForEachElement(o, [&](const int64_t* i, int64_t) {
    if (i[3] != 0) return;
    const double ref_lse = want_lse[row];
    double got_lse = 0;
    if (l.present) {
      const int64_t li[4] = {i[0], i[1], i[2], 0};
      got_lse = ReadElem(l, c.buffers[l.buffer].data + l.byte_offset, li);
    }
    for (int64_t e = 0; e < dv; ++e) {
      const int64_t oi[4] = {i[0], i[1], i[2], e};
      const double got = ReadElem(o, ob, oi);
      const double want = want_out[row * static_cast<size_t>(dv) + e];
      const double rounding = OutputRounding(o.dtype, want);
      const bool half_overflow = o.dtype == SDPA_DTYPE_F16 &&
                                 std::fabs(want) >= 65504.0 &&
                                 std::isinf(got) && (got > 0) == (want > 0);
      if (half_overflow) continue;  // F16 rounds it to infinity
      if (well_conditioned) {
        if (std::isnan(want) || std::isnan(got)) {
          FUZZ_EXPECT(std::isnan(want) && std::isnan(got),
                      "out[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                      "] = %.9g, reference %.9g",
                      i[0], i[1], i[2], e, got, want);
        } else if (std::isinf(want) || std::isinf(got)) {
          FUZZ_EXPECT(got == want,
                      "out[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                      "] = %.9g, reference %.9g",
                      i[0], i[1], i[2], e, got, want);
        } else {
          FUZZ_EXPECT(std::fabs(got - want) <= kTolerance * v_scale + rounding,
                      "out[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                      "] = %.9g, reference %.9g (max|V| %g)",
                      i[0], i[1], i[2], e, got, want, v_scale);
        }
      } else if (finite && in_float_range) {
        if (ref_lse == -std::numeric_limits<double>::infinity()) {
          FUZZ_EXPECT(got == 0.0, "row that sees no key: out %.9g", got);
          continue;
        }
        // A convex combination of the visible V rows: inside the hull of
        // all V rows of that head.
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        const int64_t group = q.shape[1] / k.shape[1];
        for (int64_t j = 0; j < k.shape[2]; ++j) {
          const int64_t vi[4] = {i[0], i[1] / group, j, e};
          const double x = ReadElem(v, vb, vi);
          lo = std::min(lo, x), hi = std::max(hi, x);
        }
        const double slack =
            kTolerance * v_scale + OutputRounding(o.dtype, std::max(-lo, hi));
        FUZZ_EXPECT(
            std::isfinite(got) && got >= lo - slack && got <= hi + slack,
            "out %.9g outside [%.9g, %.9g] (reference %.9g)", got, lo, hi,
            want);
      }
    }
    if (l.present) {
      if (well_conditioned) {
        if (std::isnan(ref_lse) || std::isnan(got_lse) || std::isinf(ref_lse) ||
            std::isinf(got_lse)) {
          FUZZ_EXPECT((std::isnan(ref_lse) && std::isnan(got_lse)) ||
                          got_lse == ref_lse,
                      "lse %.9g, reference %.9g", got_lse, ref_lse);
        } else {
          FUZZ_EXPECT(std::fabs(got_lse - ref_lse) <=
                          kTolerance * std::max(1.0, std::fabs(ref_lse)),
                      "lse %.9g, reference %.9g", got_lse, ref_lse);
        }
      } else if (finite && in_float_range &&
                 ref_lse == -std::numeric_limits<double>::infinity()) {
        FUZZ_EXPECT(got_lse == ref_lse, "lse %.9g of a row that sees no key",
                    got_lse);
      }
    }
    ++row;
  });
}

void Run(Case& c) {
  Place(c);
  FillInputs(c);

  sdpa_attention_args filled{};
  filled.struct_size = c.struct_size;
  const sdpa_tensor* views[kRoles];
  for (int role = 0; role < kRoles; ++role) {
    views[role] = c.t[role].present ? &c.t[role].view : nullptr;
  }
  filled.q = views[kQ];
  filled.k = views[kK];
  filled.v = views[kV];
  filled.mask = views[kMaskRole];
  filled.out = c.t[kOut].present ? &c.t[kOut].view : nullptr;
  filled.lse = c.t[kLse].present ? &c.t[kLse].view : nullptr;
  filled.scale = c.scale;
  StoreRaw(&filled.causal, c.causal);
  filled.window_left = c.window_left;
  filled.window_right = c.window_right;
  filled.flags = c.arg_flags;
  // A caller whose struct is struct_size bytes long (ASan sees overreads).
  const size_t full = sizeof(sdpa_attention_args);
  const size_t bytes =
      c.struct_size < full ? std::max<size_t>(c.struct_size, 4) : full;
  auto* args = static_cast<sdpa_attention_args*>(std::malloc(bytes));
  std::memcpy(args, &filled, bytes);

  std::string why;
  const Verdict verdict = Expect(c, &why);
  Append("oracle: %s (%s)\n",
         verdict == Verdict::kValid     ? "valid"
         : verdict == Verdict::kInvalid ? "invalid"
                                        : "either",
         why.c_str());

  const bool runnable = AllSane(c) && Work(c) <= kMaxWork;
  if (!runnable) {
    // Huge or unbacked descriptors: only the validator, which reads the
    // structs and never the data.
    bool accepted = false;
    try {
      sdpa::ValidateAttentionArgs(c.args_null ? nullptr : args);
      accepted = true;
    } catch (...) {
    }
    FUZZ_EXPECT(!(verdict == Verdict::kInvalid && accepted),
                "validator accepted an invalid call (%s)", why.c_str());
    FUZZ_EXPECT(!(verdict == Verdict::kValid && !accepted),
                "validator refused a valid call");
    std::free(args);
    return;
  }

  std::vector<std::vector<uint8_t>> before;
  for (const Buffer& b : c.buffers)
    before.emplace_back(b.data, b.data + b.bytes);

  const sdpa_status status =
      sdpa_attention(c.context, c.args_null ? nullptr : args);
  const std::string message = sdpa_last_error();
  Append("status: %d (%s)\n", status, message.c_str());

  if (status != SDPA_OK) {
    FUZZ_EXPECT(verdict != Verdict::kValid, "a valid call was refused");
    FUZZ_EXPECT(status == SDPA_ERROR_INVALID_ARGUMENT ||
                    status == SDPA_ERROR_UNSUPPORTED,
                "refused with status %d", status);
    FUZZ_EXPECT(!message.empty(), "refused without a message");
    for (size_t b = 0; b < c.buffers.size(); ++b) {
      FUZZ_EXPECT(std::memcmp(before[b].data(), c.buffers[b].data,
                              c.buffers[b].bytes) == 0,
                  "a refused call changed buffer %zu", b);
    }
    std::free(args);
    return;
  }
  FUZZ_EXPECT(verdict != Verdict::kInvalid, "an invalid call was accepted (%s)",
              why.c_str());
  FUZZ_EXPECT(message.empty(), "success with a message");

  // Only out and lse bytes may change, and each of their elements must.
  std::vector<std::vector<bool>> writable;
  for (const Buffer& b : c.buffers) writable.emplace_back(b.bytes, false);
  for (int role : {kOut, kLse}) {
    const TensorSpec& t = c.t[role];
    if (!t.present) continue;
    uint8_t sentinel[4];
    std::memset(sentinel, kSentinelByte, sizeof(sentinel));
    const bool own = c.buffers[t.buffer].owner == role;
    ForEachElement(t, [&](const int64_t* i, int64_t offset) {
      const size_t at =
          t.byte_offset +
          static_cast<size_t>(offset * static_cast<int64_t>(t.elem));
      for (size_t byte = 0; byte < t.elem; ++byte) {
        writable[t.buffer][at + byte] = true;
      }
      if (own) {
        FUZZ_EXPECT(
            std::memcmp(c.buffers[t.buffer].data + at, sentinel, t.elem) != 0,
            "%s[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
            "] was not written",
            kRoleNames[role], i[0], i[1], i[2], i[3]);
      }
    });
  }
  for (size_t b = 0; b < c.buffers.size(); ++b) {
    for (size_t i = 0; i < c.buffers[b].bytes; ++i) {
      FUZZ_EXPECT(writable[b][i] || c.buffers[b].data[i] == before[b][i],
                  "byte %zu of buffer %zu changed outside out/lse", i, b);
    }
  }

  if (Work(c) <= kMaxCheckedWork) CheckAgainstReference(c, *args);
  std::free(args);
}

}  // namespace

// fuzz/c_probe.c: sdpa_status_string with any int, as C may call it.
extern "C" const char* sdpa_fuzz_status_string(int status);

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const uint64_t available = sdpa_available_isas();
  for (int bit = 0; bit < 64; ++bit) {
    if (available & (uint64_t{1} << bit)) g_isas.push_back(uint64_t{1} << bit);
  }
  if (g_isas.empty()) {
    std::fprintf(stderr, "sdpa_available_isas() is empty\n");
    std::abort();
  }
  g_cached.assign(g_isas.size() * kCachedThreads, nullptr);
  // Leak checks see the cached contexts destroyed.
  std::atexit([] {
    for (sdpa_context* context : g_cached) sdpa_context_destroy(context);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_case.clear();
  Reader in(data, size);
  Case c;
  Decode(in, c);
  Run(c);
  // SDPA_FUZZ_VERBOSE=1: print every case (to check what seeds decode to).
  static const bool verbose = std::getenv("SDPA_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "---\n%s", g_case.c_str());
  for (Buffer& b : c.buffers) std::free(b.data);
  if (c.fresh_context) sdpa_context_destroy(c.context);
  // The plain queries take any value.
  const uint64_t probe = static_cast<uint64_t>(c.seed);
  FUZZ_EXPECT(sdpa_isa_name(probe) != nullptr, "sdpa_isa_name NULL");
  FUZZ_EXPECT(
      sdpa_fuzz_status_string(static_cast<int32_t>(probe >> 32)) != nullptr,
      "status string NULL");
  return 0;
}
