#include "src/validate.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

#include "src/error.h"
#include "src/tensor_extent.h"

namespace sdpa {
namespace {

// No real memory holds a dimension this long (broadcast inputs aside), and
// staying below 2^62 leaves the kernels' index arithmetic (d(i) +- window,
// rounding up to whole blocks) room without overflow checks of its own.
constexpr int64_t kMaxSize = int64_t{1} << 62;

// sizeof(sdpa_attention_args) in version 0.1: its fields end at window_right
// (flags came in 0.2).
constexpr int64_t kAttentionArgsSizeV01 =
    offsetof(sdpa_attention_args, window_right) + sizeof(int64_t);
static_assert(kAttentionArgsSizeV01 == offsetof(sdpa_attention_args, flags),
              "flags follows the fields of version 0.1");
constexpr uint32_t kKnownFlags = SDPA_FLAG_BF16_WEIGHTS;

[[noreturn]] void Invalid(const std::string& message) {
  throw Error(SDPA_ERROR_INVALID_ARGUMENT, message);
}

std::string Str(int64_t value) { return std::to_string(value); }

std::string Dims(const int64_t values[4]) {
  return "[" + Str(values[0]) + ", " + Str(values[1]) + ", " + Str(values[2]) +
         ", " + Str(values[3]) + "]";
}

std::string Hex(uintptr_t value) {
  char text[2 + 2 * sizeof(value) + 1];
  std::snprintf(text, sizeof(text), "0x%" PRIxPTR, value);
  return text;
}

// The integer a caller stored in an enum field. C callers may store any int
// there, and loading an out-of-range value as the C++ enum type would be
// undefined, so the bytes are read as the enum's underlying type.
template <typename Enum>
int64_t RawEnumValue(const Enum& field) {
  using Underlying = std::underlying_type_t<Enum>;
  Underlying raw;
  std::memcpy(&raw, &field, sizeof(raw));
  return static_cast<int64_t>(static_cast<std::make_signed_t<Underlying>>(raw));
}

enum class Role { kData, kMask, kLse };

// Checks the dtype a tensor of `role` may have; returns its element size.
size_t CheckDtype(const sdpa_tensor& t, const std::string& name, Role role) {
  const std::string supported =
      role == Role::kMask ? "SDPA_DTYPE_F32 or SDPA_DTYPE_BOOL"
      : role == Role::kData
          ? "SDPA_DTYPE_F32, SDPA_DTYPE_BF16 or SDPA_DTYPE_F16"
          : "SDPA_DTYPE_F32";
  const int64_t raw = RawEnumValue(t.dtype);
  switch (raw) {
    case SDPA_DTYPE_F32:
      return sizeof(float);
    case SDPA_DTYPE_BOOL:
      if (role == Role::kMask) return 1;
      Invalid(name + "->dtype is SDPA_DTYPE_BOOL, which only a mask may be; " +
              name + " must be " + supported);
    case SDPA_DTYPE_BF16:
    case SDPA_DTYPE_F16:
      if (role == Role::kData) return 2;
      throw Error(
          SDPA_ERROR_UNSUPPORTED,
          name + "->dtype is " +
              (raw == SDPA_DTYPE_BF16 ? "SDPA_DTYPE_BF16" : "SDPA_DTYPE_F16") +
              "; this version supports only " + supported + " for " + name);
    default:
      Invalid(name + "->dtype is " + Str(raw) +
              ", which is not an sdpa_dtype value; " + name + " must be " +
              supported);
  }
}

ElemType ElemTypeOf(const sdpa_tensor& t) {
  switch (RawEnumValue(t.dtype)) {
    case SDPA_DTYPE_BF16:
      return ElemType::kBF16;
    case SDPA_DTYPE_F16:
      return ElemType::kF16;
    default:
      return ElemType::kF32;
  }
}

void CheckData(const sdpa_tensor& t, const std::string& name,
               size_t element_bytes) {
  if (t.data == nullptr) Invalid(name + "->data is NULL");
  // A float that is not 4-byte aligned is not a float object in C or C++.
  const uintptr_t address = reinterpret_cast<uintptr_t>(t.data);
  if (address % element_bytes != 0) {
    Invalid(name + "->data (" + Hex(address) + ") is not aligned to " +
            Str(static_cast<int64_t>(element_bytes)) +
            " bytes, the size of its elements");
  }
}

void CheckSizes(const sdpa_tensor& t, const std::string& name) {
  for (int d = 0; d < 4; ++d) {
    const std::string what =
        name + "->shape[" + Str(d) + "] is " + Str(t.shape[d]);
    if (t.shape[d] < 1) Invalid(what + "; every size must be at least 1");
    if (t.shape[d] > kMaxSize) {
      Invalid(what + "; sizes above 2^62 are not supported");
    }
  }
}

// One dimension of a tensor must equal a dimension of another, e.g.
// "k->shape[3] (head dim) is 64 but q->shape[3] is 128".
void ExpectEqualDim(const sdpa_tensor& t, const char* name, int dim,
                    const char* meaning, const sdpa_tensor& ref,
                    const char* ref_name, int ref_dim) {
  if (t.shape[dim] == ref.shape[ref_dim]) return;
  Invalid(std::string(name) + "->shape[" + Str(dim) + "] (" + meaning +
          ") is " + Str(t.shape[dim]) + " but " + ref_name + "->shape[" +
          Str(ref_dim) + "] is " + Str(ref.shape[ref_dim]));
}

void CheckQkvOutShapes(const sdpa_tensor& q, const sdpa_tensor& k,
                       const sdpa_tensor& v, const sdpa_tensor& out) {
  ExpectEqualDim(k, "k", 0, "batch", q, "q", 0);
  ExpectEqualDim(v, "v", 0, "batch", q, "q", 0);
  ExpectEqualDim(out, "out", 0, "batch", q, "q", 0);
  if (q.shape[1] % k.shape[1] != 0) {
    Invalid("q->shape[1] (query heads) is " + Str(q.shape[1]) +
            ", which is not a multiple of k->shape[1] (kv heads), " +
            Str(k.shape[1]));
  }
  ExpectEqualDim(v, "v", 1, "kv heads", k, "k", 1);
  ExpectEqualDim(out, "out", 1, "query heads", q, "q", 1);
  ExpectEqualDim(v, "v", 2, "keys", k, "k", 2);
  ExpectEqualDim(out, "out", 2, "queries", q, "q", 2);
  ExpectEqualDim(k, "k", 3, "head dim", q, "q", 3);
  ExpectEqualDim(out, "out", 3, "value dim", v, "v", 3);
}

// mask: [B|1, Hq|1, Tq|1, Tk].
void CheckMaskShape(const sdpa_tensor& mask, const sdpa_tensor& q,
                    const sdpa_tensor& k) {
  const char* meanings[3] = {"batch", "query heads", "queries"};
  for (int d = 0; d < 3; ++d) {
    if (mask.shape[d] == q.shape[d] || mask.shape[d] == 1) continue;
    Invalid("mask->shape[" + Str(d) + "] is " + Str(mask.shape[d]) +
            "; it must be q->shape[" + Str(d) + "] (" + meanings[d] + ", " +
            Str(q.shape[d]) + ") or 1 to broadcast");
  }
  if (mask.shape[3] != k.shape[2]) {
    Invalid("mask->shape[3] is " + Str(mask.shape[3]) +
            "; it must be k->shape[2] (keys, " + Str(k.shape[2]) +
            "): the key dimension does not broadcast");
  }
}

// lse: [B, Hq, Tq, 1].
void CheckLseShape(const sdpa_tensor& lse, const sdpa_tensor& q) {
  const int64_t expected[4] = {q.shape[0], q.shape[1], q.shape[2], 1};
  for (int d = 0; d < 4; ++d) {
    if (lse.shape[d] == expected[d]) continue;
    Invalid("lse->shape[" + Str(d) + "] is " + Str(lse.shape[d]) +
            "; lse must have shape [batch, query heads, queries, 1] = " +
            Dims(expected));
  }
}

void CheckScalars(const sdpa_attention_args& args) {
  if (!std::isfinite(args.scale)) {
    Invalid("args->scale is " + std::to_string(args.scale) +
            "; it must be finite (0 selects 1/sqrt(head dim))");
  }
  const int64_t causal = RawEnumValue(args.causal);
  if (causal != SDPA_CAUSAL_NONE && causal != SDPA_CAUSAL_TOP_LEFT &&
      causal != SDPA_CAUSAL_BOTTOM_RIGHT) {
    Invalid("args->causal is " + Str(causal) +
            ", which is not an sdpa_causal value (SDPA_CAUSAL_NONE, "
            "SDPA_CAUSAL_TOP_LEFT or SDPA_CAUSAL_BOTTOM_RIGHT)");
  }
}

// A tensor argument that passed the per-tensor checks, with its bytes.
struct Checked {
  const sdpa_tensor* tensor = nullptr;  // nullptr: absent (mask, lse)
  const char* name = "";
  ByteSpan bytes;
};

ByteSpan CheckExtent(const sdpa_tensor& t, const std::string& name,
                     size_t element_bytes) {
  const std::string layout =
      name + " (shape " + Dims(t.shape) + ", strides " + Dims(t.strides) + ")";
  const auto offsets = ElementOffsetRange(t.shape, t.strides);
  if (!offsets) Invalid(layout + " has element offsets that overflow int64");
  const auto bytes = ByteSpanOf(t.data, *offsets, element_bytes);
  if (!bytes) {
    Invalid(layout + " spans element offsets " + Str(offsets->min) + " to " +
            Str(offsets->max) + " from " +
            Hex(reinterpret_cast<uintptr_t>(t.data)) +
            ", which overflows int64 bytes or the address space");
  }
  return *bytes;
}

void CheckDistinctElements(const sdpa_tensor& t, const std::string& name) {
  if (ElementsAreDistinct(t.shape, t.strides)) return;
  Invalid(name + " (shape " + Dims(t.shape) + ", strides " + Dims(t.strides) +
          ") maps different elements to the same memory; each dimension of "
          "size > 1 needs a nonzero stride larger than the span of the "
          "dimensions with smaller strides");
}

void CheckNoOverlap(const Checked& written, const Checked& other) {
  if (other.tensor == nullptr || written.tensor == nullptr) return;
  if (!SpansOverlap(written.bytes, other.bytes)) return;
  Invalid(std::string(written.name) + " (bytes " + Hex(written.bytes.first) +
          " to " + Hex(written.bytes.last) + ") overlaps " + other.name +
          " (bytes " + Hex(other.bytes.first) + " to " + Hex(other.bytes.last) +
          "); out and lse must not overlap q, k, v, mask or each other");
}

// Only index 0 of a dimension of size 1 is ever used, so its stride means
// nothing and may be anything, INT64_MAX included (NumPy's relaxed-strides
// debug mode puts it there). The kernels form pointers a few rows past the
// ones they read (register tiles, prefetches) by multiplying strides, which
// would overflow int64: a size-1 dimension gets stride 0, or 1 innermost
// (where 1 selects the contiguous paths). Found by fuzz/attention_fuzzer.cc
// (clang UBSan: signed overflow in qk_tile-inl.h with Tk = 1).
void CopyStrides(const sdpa_tensor& t, int64_t* strides, int count) {
  for (int d = 0; d < count; ++d) {
    strides[d] = t.shape[d] != 1 ? t.strides[d] : d == 3 ? 1 : 0;
  }
}

Problem BuildProblem(const sdpa_attention_args& args) {
  const sdpa_tensor& q = *args.q;
  const sdpa_tensor& k = *args.k;
  const sdpa_tensor& v = *args.v;
  Problem p;
  p.batch = q.shape[0];
  p.q_heads = q.shape[1];
  p.kv_heads = k.shape[1];
  p.q_len = q.shape[2];
  p.kv_len = k.shape[2];
  p.head_dim = q.shape[3];
  p.value_dim = v.shape[3];
  p.q = q.data;
  p.q_type = ElemTypeOf(q);
  CopyStrides(q, p.q_strides, 4);
  p.k = k.data;
  p.k_type = ElemTypeOf(k);
  CopyStrides(k, p.k_strides, 4);
  p.v = v.data;
  p.v_type = ElemTypeOf(v);
  CopyStrides(v, p.v_strides, 4);
  p.out = args.out->data;
  p.out_type = ElemTypeOf(*args.out);
  CopyStrides(*args.out, p.out_strides, 4);
  if (args.mask != nullptr) {
    const sdpa_tensor& mask = *args.mask;
    p.mask_kind = RawEnumValue(mask.dtype) == SDPA_DTYPE_BOOL
                      ? MaskKind::kKeepBool
                      : MaskKind::kAdditiveF32;
    p.mask = mask.data;
    // Broadcasting is a stride of 0, whatever the caller's stride of a
    // dimension of size 1 was.
    for (int d = 0; d < 4; ++d) {
      p.mask_strides[d] = mask.shape[d] == 1 ? 0 : mask.strides[d];
    }
  }
  if (args.lse != nullptr) {
    p.lse = static_cast<float*>(args.lse->data);
    CopyStrides(*args.lse, p.lse_strides, 3);
  }
  p.bf16_weights = (args.flags & SDPA_FLAG_BF16_WEIGHTS) != 0;
  p.scale = args.scale != 0.0f
                ? args.scale
                : static_cast<float>(
                      1.0 / std::sqrt(static_cast<double>(p.head_dim)));

  const int64_t causal = RawEnumValue(args.causal);
  p.diag_offset = causal == SDPA_CAUSAL_TOP_LEFT ? 0 : p.kv_len - p.q_len;
  // |d(i) - j| < max(Tq, Tk) for every query i and key j, so a window at
  // least that wide hides nothing: it becomes unbounded, which also keeps
  // d(i) +- window inside int64 in the kernels.
  const int64_t longest = std::max(p.q_len, p.kv_len);
  auto effective = [longest](int64_t window) {
    return window < 0 || window >= longest ? int64_t{-1} : window;
  };
  p.left = effective(args.window_left);
  // Causal is the window edge j <= d(i); any right window is wider.
  p.right = causal == SDPA_CAUSAL_NONE ? effective(args.window_right) : 0;
  return p;
}

}  // namespace

Problem ValidateAttentionArgs(const sdpa_attention_args* args_pointer) {
  if (args_pointer == nullptr) Invalid("args is NULL");
  // struct_size first: the fields after it may lie beyond the caller's struct.
  // A caller's struct is one of a version: 0.1's, this one, or a later
  // (larger) one; any other size is a caller's mistake.
  const int64_t size = args_pointer->struct_size;
  if (size != kAttentionArgsSizeV01 &&
      size < static_cast<int64_t>(sizeof(sdpa_attention_args))) {
    Invalid("args->struct_size is " + Str(size) +
            "; expected at least sizeof(sdpa_attention_args) = " +
            Str(static_cast<int64_t>(sizeof(sdpa_attention_args))) + ", or " +
            Str(kAttentionArgsSizeV01) + " (the struct of version 0.1)");
  }
  // The caller's fields, and zeros for those added after its struct ends.
  sdpa_attention_args args{};
  memcpy(&args, args_pointer,
         std::min(static_cast<size_t>(size), sizeof(args)));
  if ((args.flags & ~kKnownFlags) != 0) {
    Invalid("args->flags is " + Hex(args.flags) + "; unknown bits " +
            Hex(args.flags & ~kKnownFlags) +
            " (known: SDPA_FLAG_BF16_WEIGHTS = 0x1)");
  }
  if (args.q == nullptr) Invalid("args->q is NULL");
  if (args.k == nullptr) Invalid("args->k is NULL");
  if (args.v == nullptr) Invalid("args->v is NULL");
  if (args.out == nullptr) Invalid("args->out is NULL");

  Checked tensors[6] = {{args.q, "q", {}},     {args.k, "k", {}},
                        {args.v, "v", {}},     {args.mask, "mask", {}},
                        {args.out, "out", {}}, {args.lse, "lse", {}}};
  Checked& out = tensors[4];
  Checked& lse = tensors[5];
  size_t element_bytes[6] = {};
  for (int i = 0; i < 6; ++i) {
    const Checked& c = tensors[i];
    if (c.tensor == nullptr) continue;
    const Role role = i == 3 ? Role::kMask : i == 5 ? Role::kLse : Role::kData;
    element_bytes[i] = CheckDtype(*c.tensor, c.name, role);
    CheckData(*c.tensor, c.name, element_bytes[i]);
    CheckSizes(*c.tensor, c.name);
  }
  CheckQkvOutShapes(*args.q, *args.k, *args.v, *args.out);
  if (args.mask != nullptr) CheckMaskShape(*args.mask, *args.q, *args.k);
  if (args.lse != nullptr) CheckLseShape(*args.lse, *args.q);
  CheckScalars(args);

  for (int i = 0; i < 6; ++i) {
    Checked& c = tensors[i];
    if (c.tensor == nullptr) continue;
    c.bytes = CheckExtent(*c.tensor, c.name, element_bytes[i]);
  }
  CheckDistinctElements(*out.tensor, out.name);
  if (lse.tensor != nullptr) CheckDistinctElements(*lse.tensor, lse.name);
  for (int input = 0; input < 4; ++input) {
    CheckNoOverlap(out, tensors[input]);
    CheckNoOverlap(lse, tensors[input]);
  }
  CheckNoOverlap(lse, out);
  return BuildProblem(args);
}

}  // namespace sdpa
