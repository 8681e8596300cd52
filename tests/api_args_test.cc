// sdpa_attention's argument contract: every malformed call is refused with
// the right status, a message naming the argument, and out/lse untouched;
// the unusual but valid calls next to each refusal are accepted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sdpa/sdpa.h"
#include "tests/test_util.h"

namespace {

using sdpa_testing::BoolTensor;
using sdpa_testing::F32Tensor;
using sdpa_testing::Layout;
using sdpa_testing::MakeArgs;
using sdpa_testing::MatchesReference;

constexpr int64_t kBatch = 2, kQHeads = 4, kKvHeads = 2, kQLen = 3;
constexpr int64_t kKvLen = 5, kHeadDim = 4, kValueDim = 6;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
// fp32 kernels against the float64 reference on 5 keys of |x| < 1.
constexpr double kTolerance = 1e-5;
// Written into out and lse before a call that must not write them.
constexpr float kSentinel = -1234.5f;

// Stores any int into an enum field, as a C caller may; assigning an
// out-of-range value through the C++ enum type would be undefined.
template <typename Enum>
void StoreRawEnum(Enum* field, int value) {
  static_assert(sizeof(Enum) == sizeof(int), "C enums are int-sized here");
  std::memcpy(field, &value, sizeof(value));
}

void* AddBytes(void* data, int64_t bytes) {
  return static_cast<char*>(data) + bytes;
}

// A valid call (GQA 4:2, Dk != Dv, F32 mask broadcast over batch, lse) that
// each case below breaks in exactly one way. ValidCallTest.Accepted proves
// the unbroken call succeeds, so a refusal can only come from the change.
struct ValidCall {
  F32Tensor q{{kBatch, kQHeads, kQLen, kHeadDim}};
  F32Tensor k{{kBatch, kKvHeads, kKvLen, kHeadDim}};
  F32Tensor v{{kBatch, kKvHeads, kKvLen, kValueDim}};
  F32Tensor out{{kBatch, kQHeads, kQLen, kValueDim}};
  F32Tensor lse{{kBatch, kQHeads, kQLen, 1}};
  F32Tensor mask{{1, kQHeads, kQLen, kKvLen}};
  sdpa_attention_args args{};

  ValidCall() {
    std::mt19937 rng(42);
    q.FillUniform(rng);
    k.FillUniform(rng);
    v.FillUniform(rng);
    mask.FillUniform(rng);
    out.FillBuffer(kSentinel);
    lse.FillBuffer(kSentinel);
    args = MakeArgs(q.view(), k.view(), v.view(), out.view());
    args.mask = mask.view();
    args.lse = lse.view();
  }

  bool OutputsUntouched() const {
    return out.BufferIs(kSentinel) && lse.BufferIs(kSentinel);
  }
};

struct BadCase {
  const char* name;
  sdpa_status status;
  // Both must appear in sdpa_last_error(); the first names the argument.
  const char* needles[2];
  void (*breaks)(ValidCall&);
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

const BadCase kBadCases[] = {
    // struct_size is read before anything else.
    {"struct_size_zero",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->struct_size is 0", "sizeof(sdpa_attention_args)"},
     [](ValidCall& c) { c.args.struct_size = 0; }},
    {"struct_size_one_short",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->struct_size", "expected at least"},
     [](ValidCall& c) { c.args.struct_size = sizeof(c.args) - 1; }},
    // Between version 0.1's struct and this one: no version's size.
    {"struct_size_of_no_version",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->struct_size", "version 0.1"},
     [](ValidCall& c) {
       c.args.struct_size = offsetof(sdpa_attention_args, flags) + 4;
     }},
    {"struct_size_short_of_version_0_1",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->struct_size", "version 0.1"},
     [](ValidCall& c) {
       c.args.struct_size = offsetof(sdpa_attention_args, flags) - 8;
     }},
    {"flags_unknown_bit",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->flags is 0x3", "unknown bits 0x2"},
     [](ValidCall& c) { c.args.flags = SDPA_FLAG_BF16_WEIGHTS | 2u; }},
    {"flags_high_bit",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->flags is 0x80000000", "SDPA_FLAG_BF16_WEIGHTS"},
     [](ValidCall& c) { c.args.flags = 0x80000000u; }},
    // Required pointers.
    {"q_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->q is NULL", ""},
     [](ValidCall& c) { c.args.q = nullptr; }},
    {"k_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->k is NULL", ""},
     [](ValidCall& c) { c.args.k = nullptr; }},
    {"v_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->v is NULL", ""},
     [](ValidCall& c) { c.args.v = nullptr; }},
    {"out_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->out is NULL", ""},
     [](ValidCall& c) { c.args.out = nullptr; }},
    {"q_data_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"q->data is NULL", ""},
     [](ValidCall& c) { c.q.view()->data = nullptr; }},
    {"k_data_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"k->data is NULL", ""},
     [](ValidCall& c) { c.k.view()->data = nullptr; }},
    {"v_data_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"v->data is NULL", ""},
     [](ValidCall& c) { c.v.view()->data = nullptr; }},
    {"out_data_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out->data is NULL", ""},
     [](ValidCall& c) { c.out.view()->data = nullptr; }},
    {"mask_data_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"mask->data is NULL", ""},
     [](ValidCall& c) { c.mask.view()->data = nullptr; }},
    {"lse_data_null",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"lse->data is NULL", ""},
     [](ValidCall& c) { c.lse.view()->data = nullptr; }},
    // A float pointer must be aligned for float.
    {"q_data_misaligned",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"q->data", "aligned"},
     [](ValidCall& c) { c.q.view()->data = AddBytes(c.q.view()->data, 1); }},
    {"out_data_misaligned",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out->data", "aligned"},
     [](ValidCall& c) {
       c.out.view()->data = AddBytes(c.out.view()->data, 2);
     }},
    // Dtypes: BF16/F16 q, k, v and out are supported
    // (tests/kernel_dtypes_test.cc);
    // masks and lse stay F32 (or BOOL for a mask).
    {"mask_f16",
     SDPA_ERROR_UNSUPPORTED,
     {"mask->dtype", ""},
     [](ValidCall& c) { c.mask.view()->dtype = SDPA_DTYPE_F16; }},
    {"lse_bf16",
     SDPA_ERROR_UNSUPPORTED,
     {"lse->dtype", ""},
     [](ValidCall& c) { c.lse.view()->dtype = SDPA_DTYPE_BF16; }},
    // Dtypes: meaningless for the argument, or not a dtype at all.
    {"q_bool",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"q->dtype is SDPA_DTYPE_BOOL", "only a mask"},
     [](ValidCall& c) { c.q.view()->dtype = SDPA_DTYPE_BOOL; }},
    {"out_bool",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out->dtype", "only a mask"},
     [](ValidCall& c) { c.out.view()->dtype = SDPA_DTYPE_BOOL; }},
    {"lse_bool",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"lse->dtype", "only a mask"},
     [](ValidCall& c) { c.lse.view()->dtype = SDPA_DTYPE_BOOL; }},
    {"q_dtype_out_of_range",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"q->dtype is 7", "not an sdpa_dtype"},
     [](ValidCall& c) { StoreRawEnum(&c.q.view()->dtype, 7); }},
    {"v_dtype_just_past_last",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"v->dtype is 4", "not an sdpa_dtype"},
     [](ValidCall& c) { StoreRawEnum(&c.v.view()->dtype, 4); }},
    {"mask_dtype_negative",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"mask->dtype is -1", "not an sdpa_dtype"},
     [](ValidCall& c) { StoreRawEnum(&c.mask.view()->dtype, -1); }},
    // Sizes below 1 (or beyond any memory).
    {"q_batch_zero",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"q->shape[0] is 0", "at least 1"},
     [](ValidCall& c) { c.q.view()->shape[0] = 0; }},
    {"k_keys_zero",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"k->shape[2] is 0", "at least 1"},
     [](ValidCall& c) { c.k.view()->shape[2] = 0; }},
    {"v_value_dim_negative",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"v->shape[3] is -3", "at least 1"},
     [](ValidCall& c) { c.v.view()->shape[3] = -3; }},
    {"out_heads_zero",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out->shape[1] is 0", "at least 1"},
     [](ValidCall& c) { c.out.view()->shape[1] = 0; }},
    {"mask_keys_zero",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"mask->shape[3] is 0", "at least 1"},
     [](ValidCall& c) { c.mask.view()->shape[3] = 0; }},
    {"lse_last_zero",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"lse->shape[3] is 0", "at least 1"},
     [](ValidCall& c) { c.lse.view()->shape[3] = 0; }},
    {"q_len_int64_max",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"q->shape[2]", "2^62"},
     [](ValidCall& c) { c.q.view()->shape[2] = kMax; }},
    // Shapes that disagree.
    {"k_batch",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"k->shape[0] (batch) is 1 but q->shape[0] is 2", ""},
     [](ValidCall& c) { c.k.view()->shape[0] = 1; }},
    {"v_batch",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"v->shape[0] (batch)", ""},
     [](ValidCall& c) { c.v.view()->shape[0] = 1; }},
    {"out_batch",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out->shape[0] (batch)", ""},
     [](ValidCall& c) { c.out.view()->shape[0] = 1; }},
    {"q_heads_not_multiple_of_kv_heads",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"q->shape[1] (query heads) is 4", "not a multiple of k->shape[1]"},
     [](ValidCall& c) { c.k.view()->shape[1] = c.v.view()->shape[1] = 3; }},
    {"v_heads",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"v->shape[1] (kv heads) is 1 but k->shape[1] is 2", ""},
     [](ValidCall& c) { c.v.view()->shape[1] = 1; }},
    {"out_heads",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out->shape[1] (query heads) is 2 but q->shape[1] is 4", ""},
     [](ValidCall& c) { c.out.view()->shape[1] = 2; }},
    {"v_keys",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"v->shape[2] (keys) is 4 but k->shape[2] is 5", ""},
     [](ValidCall& c) { c.v.view()->shape[2] = 4; }},
    {"out_queries",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out->shape[2] (queries) is 2 but q->shape[2] is 3", ""},
     [](ValidCall& c) { c.out.view()->shape[2] = 2; }},
    {"k_head_dim",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"k->shape[3] (head dim) is 8 but q->shape[3] is 4", ""},
     [](ValidCall& c) { c.k.view()->shape[3] = 8; }},
    {"out_value_dim",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out->shape[3] (value dim) is 5 but v->shape[3] is 6", ""},
     [](ValidCall& c) { c.out.view()->shape[3] = 5; }},
    // Masks that do not broadcast to [B, Hq, Tq, Tk].
    {"mask_batch",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"mask->shape[0] is 3", "or 1"},
     [](ValidCall& c) { c.mask.view()->shape[0] = 3; }},
    {"mask_heads_is_kv_heads",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"mask->shape[1] is 2", "or 1"},
     [](ValidCall& c) { c.mask.view()->shape[1] = 2; }},
    {"mask_queries",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"mask->shape[2] is 2", "or 1"},
     [](ValidCall& c) { c.mask.view()->shape[2] = 2; }},
    {"mask_keys",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"mask->shape[3] is 4", "k->shape[2]"},
     [](ValidCall& c) { c.mask.view()->shape[3] = 4; }},
    {"mask_keys_do_not_broadcast",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"mask->shape[3] is 1", "does not broadcast"},
     [](ValidCall& c) { c.mask.view()->shape[3] = 1; }},
    // lse is exactly [B, Hq, Tq, 1].
    {"lse_last_dim",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"lse->shape[3] is 2", "[2, 4, 3, 1]"},
     [](ValidCall& c) { c.lse.view()->shape[3] = 2; }},
    {"lse_batch_broadcast",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"lse->shape[0] is 1", "[2, 4, 3, 1]"},
     [](ValidCall& c) { c.lse.view()->shape[0] = 1; }},
    {"lse_queries",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"lse->shape[2] is 1", "[2, 4, 3, 1]"},
     [](ValidCall& c) { c.lse.view()->shape[2] = 1; }},
    // Scalars.
    {"scale_nan",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->scale is nan", "finite"},
     [](ValidCall& c) {
       c.args.scale = std::numeric_limits<float>::quiet_NaN();
     }},
    {"scale_inf",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->scale is inf", "finite"},
     [](ValidCall& c) {
       c.args.scale = std::numeric_limits<float>::infinity();
     }},
    {"scale_minus_inf",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->scale is -inf", "finite"},
     [](ValidCall& c) {
       c.args.scale = -std::numeric_limits<float>::infinity();
     }},
    {"causal_out_of_range",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->causal is 3", "not an sdpa_causal"},
     [](ValidCall& c) { StoreRawEnum(&c.args.causal, 3); }},
    {"causal_negative",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"args->causal is -1", "not an sdpa_causal"},
     [](ValidCall& c) { StoreRawEnum(&c.args.causal, -1); }},
    // Offsets and byte extents beyond int64 or the address space.
    {"q_element_offsets_overflow",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"q (shape [2, 4, 3, 4]", "overflow"},
     [](ValidCall& c) { c.q.view()->strides[1] = kMax / 2; }},
    {"k_byte_extent_overflows",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"k (shape", "overflow"},
     // (Tk - 1) * stride fits in int64 elements; times 4 bytes does not.
     [](ValidCall& c) { c.k.view()->strides[2] = kMax / 8; }},
    {"v_negative_byte_extent_overflows",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"v (shape", "overflow"},
     [](ValidCall& c) { c.v.view()->strides[0] = kMin / 2; }},
    {"lse_offsets_sum_overflows",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"lse (shape", "overflow"},
     // Each term fits; their sum does not.
     [](ValidCall& c) {
       c.lse.view()->strides[0] = kMax / 2 + 1;
       c.lse.view()->strides[1] = kMax / 4;
     }},
    {"out_below_address_zero",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out (shape", "address space"},
     [](ValidCall& c) {
       c.out.view()->data = reinterpret_cast<void*>(uintptr_t{64});
       c.out.view()->strides[2] = -1000;
     }},
    {"mask_past_the_last_address",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"mask (shape", "address space"},
     [](ValidCall& c) {
       c.mask.view()->data =
           reinterpret_cast<void*>(std::numeric_limits<uintptr_t>::max() - 63);
     }},
    // out and lse must not alias themselves.
    {"out_zero_stride",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out (shape", "same memory"},
     [](ValidCall& c) { c.out.view()->strides[1] = 0; }},
    {"out_rows_overlap_columns",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out (shape", "same memory"},
     [](ValidCall& c) { c.out.view()->strides[2] = 1; }},
    {"out_negative_stride_aliases",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"out (shape", "same memory"},
     // Row s + 1 starts 3 floats before row s, and rows are 6 long.
     [](ValidCall& c) { c.out.view()->strides[2] = -3; }},
    {"lse_zero_stride",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"lse (shape", "same memory"},
     [](ValidCall& c) { c.lse.view()->strides[2] = 0; }},
    {"lse_batch_aliases_heads",
     SDPA_ERROR_INVALID_ARGUMENT,
     {"lse (shape", "same memory"},
     // Batch 1 head 0 lands on batch 0 head 1.
     [](ValidCall& c) { c.lse.view()->strides[0] = c.lse.view()->strides[1]; }},
};

class BadArgsTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadArgsTest, RefusedWithMessageAndOutputsUntouched) {
  const BadCase& bad = GetParam();
  ValidCall call;
  bad.breaks(call);
  EXPECT_EQ(sdpa_attention(nullptr, &call.args), bad.status);
  const std::string message = sdpa_last_error();
  for (const char* needle : bad.needles) {
    EXPECT_NE(message.find(needle), std::string::npos)
        << "message: \"" << message << "\" lacks \"" << needle << "\"";
  }
  EXPECT_TRUE(call.OutputsUntouched());
}

INSTANTIATE_TEST_SUITE_P(Api, BadArgsTest, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(BadArgsTest, NullArgs) {
  EXPECT_EQ(sdpa_attention(nullptr, nullptr), SDPA_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(sdpa_last_error(), "args is NULL");
}

// The unbroken call succeeds and is right: without this, every refusal
// above could come from the fixture itself.
TEST(ValidCallTest, Accepted) {
  ValidCall call;
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_STREQ(sdpa_last_error(), "");
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

TEST(ValidCallTest, SuccessClearsTheLastError) {
  ValidCall call;
  ASSERT_EQ(sdpa_attention(nullptr, nullptr), SDPA_ERROR_INVALID_ARGUMENT);
  ASSERT_STRNE(sdpa_last_error(), "");
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK);
  EXPECT_STREQ(sdpa_last_error(), "");
}

// A caller built against a later sdpa.h passes a larger struct.
TEST(ValidCallTest, LargerStructSizeAccepted) {
  ValidCall call;
  struct {
    sdpa_attention_args args;
    uint64_t fields_of_a_later_version[4];
  } larger{};
  larger.args = call.args;
  larger.args.struct_size = sizeof(larger);
  ASSERT_EQ(sdpa_attention(nullptr, &larger.args), SDPA_OK)
      << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

// A caller built against version 0.1 passes a struct that ends at
// window_right: flags, past its end, are never read (ASan would see it in
// this heap copy of exactly that size).
TEST(ValidCallTest, StructOfVersion01Accepted) {
  ValidCall call;
  const size_t size = offsetof(sdpa_attention_args, flags);
  std::unique_ptr<unsigned char[]> bytes(new unsigned char[size]);
  call.args.struct_size = static_cast<uint32_t>(size);
  memcpy(bytes.get(), &call.args, size);
  ASSERT_EQ(sdpa_attention(nullptr,
                           reinterpret_cast<sdpa_attention_args*>(bytes.get())),
            SDPA_OK)
      << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

// The flag is a permission: with F32 inputs it changes nothing.
TEST(ValidCallTest, Bf16WeightsFlagWithF32ValuesIsExact) {
  ValidCall call;
  call.args.flags = SDPA_FLAG_BF16_WEIGHTS;
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

TEST(ValidCallTest, NoMaskNoLse) {
  ValidCall call;
  call.args.mask = nullptr;
  call.args.lse = nullptr;
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(call.lse.BufferIs(kSentinel));
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

TEST(ValidCallTest, NegativeScale) {
  ValidCall call;
  call.args.scale = -0.75f;
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

TEST(ValidCallTest, BoolMaskBroadcastOverHeads) {
  ValidCall call;
  BoolTensor keep({kBatch, 1, kQLen, kKvLen});
  keep.Fill([](int64_t b, int64_t, int64_t s, int64_t j) -> uint8_t {
    return (b + s + j) % 3 != 0 ? 1 : 0;
  });
  call.args.mask = keep.view();
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

// A dimension of size 1 broadcasts whatever its stride: here the strides
// would point far outside the buffer if they were used.
TEST(ValidCallTest, MaskSizeOneDimsIgnoreTheirStrides) {
  ValidCall call;
  F32Tensor row({1, 1, 1, kKvLen});
  std::mt19937 rng(7);
  row.FillUniform(rng);
  const int64_t far = int64_t{1} << 40;
  row.view()->strides[0] = row.view()->strides[1] = row.view()->strides[2] =
      far;
  call.args.mask = row.view();
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

// Full-size mask dimensions with stride 0 broadcast too.
TEST(ValidCallTest, MaskZeroStrides) {
  ValidCall call;
  F32Tensor plane({1, 1, kQLen, kKvLen});
  std::mt19937 rng(8);
  plane.FillUniform(rng, -2.0f, 2.0f);
  sdpa_tensor& view = *plane.view();
  view.shape[0] = kBatch;
  view.shape[1] = kQHeads;
  view.strides[0] = view.strides[1] = 0;
  call.args.mask = &view;
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

// Inputs may broadcast with stride 0 (here: every key row is the same).
TEST(ValidCallTest, InputZeroStride) {
  ValidCall call;
  call.k.view()->strides[2] = 0;
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

TEST(ValidCallTest, OutputWithNegativeStride) {
  ValidCall call;
  sdpa_tensor& out = *call.out.view();
  // Sequence stored backwards: element s lives where row Tq-1-s was.
  out.data = static_cast<float*>(out.data) + (kQLen - 1) * out.strides[2];
  out.strides[2] = -out.strides[2];
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

TEST(ValidCallTest, OutputInBshdLayoutWithPadding) {
  ValidCall call;
  F32Tensor out({kBatch, kQHeads, kQLen, kValueDim}, Layout::kBshd, 3);
  call.args.out = out.view();
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

// Any int64 window is valid: negative means unbounded, and a window wider
// than the sequences hides nothing.
TEST(ValidCallTest, ExtremeWindows) {
  const int64_t windows[][2] = {
      {kMax, kMax}, {kMin, kMin}, {kMax, kMin}, {kMin, kMax}, {kMax, 0}};
  for (const sdpa_causal causal :
       {SDPA_CAUSAL_NONE, SDPA_CAUSAL_TOP_LEFT, SDPA_CAUSAL_BOTTOM_RIGHT}) {
    for (const auto& window : windows) {
      SCOPED_TRACE("causal " + std::to_string(causal) + " window [" +
                   std::to_string(window[0]) + ", " +
                   std::to_string(window[1]) + "]");
      ValidCall call;
      call.args.causal = causal;
      call.args.window_left = window[0];
      call.args.window_right = window[1];
      ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK)
          << sdpa_last_error();
      EXPECT_TRUE(MatchesReference(call.args, kTolerance));
    }
  }
}

TEST(ValidCallTest, LastErrorIsPerThread) {
  ASSERT_EQ(sdpa_attention(nullptr, nullptr), SDPA_ERROR_INVALID_ARGUMENT);
  std::string seen_by_other_thread = "not run";
  std::thread other([&] {
    seen_by_other_thread = sdpa_last_error();
    ValidCall call;
    call.args.scale = std::numeric_limits<float>::quiet_NaN();
    sdpa_attention(nullptr, &call.args);
  });
  other.join();
  EXPECT_EQ(seen_by_other_thread, "");
  EXPECT_STREQ(sdpa_last_error(), "args is NULL");
}

// out or lse placed so that exactly one element (4 bytes) is shared with
// another tensor is refused; placed right after it, accepted. All tensors
// live in one slab, so even a wrong acceptance writes only inside it.
enum class Role { kQ, kK, kV, kMask, kOut };

struct Placement {
  const char* name;
  bool lse_is_written;  // else out is the tensor placed next to `other`
  Role other;
};

void PrintTo(const Placement& p, std::ostream* os) { *os << p.name; }

F32Tensor& TensorOf(ValidCall& call, Role role) {
  switch (role) {
    case Role::kQ:
      return call.q;
    case Role::kK:
      return call.k;
    case Role::kV:
      return call.v;
    case Role::kMask:
      return call.mask;
    case Role::kOut:
      break;
  }
  return call.out;
}

class OverlapTest : public ::testing::TestWithParam<Placement> {
 protected:
  // Moves `other` to the start of a slab and `written` to start
  // `distance_elems` after the last element of `other`.
  void Place(ValidCall& call, int64_t distance_elems) {
    const Placement& p = GetParam();
    F32Tensor& other = TensorOf(call, p.other);
    F32Tensor& written = p.lse_is_written ? call.lse : call.out;
    const int64_t other_elems = static_cast<int64_t>(other.buffer().size());
    const int64_t written_start = other_elems - 1 + distance_elems;
    slab_.assign(static_cast<size_t>(written_start) + written.buffer().size(),
                 kSentinel);
    std::copy(other.buffer().begin(), other.buffer().end(), slab_.begin());
    other.view()->data = slab_.data();
    written.view()->data = slab_.data() + written_start;
    before_ = slab_;
  }
  std::vector<float> slab_, before_;
};

TEST_P(OverlapTest, SharingOneElementIsRefused) {
  ValidCall call;
  Place(call, 0);
  EXPECT_EQ(sdpa_attention(nullptr, &call.args), SDPA_ERROR_INVALID_ARGUMENT);
  const std::string message = sdpa_last_error();
  const std::string written = GetParam().lse_is_written ? "lse" : "out";
  EXPECT_EQ(message.find(written + " (bytes"), 0u) << message;
  EXPECT_NE(message.find("overlaps"), std::string::npos) << message;
  EXPECT_EQ(
      std::memcmp(slab_.data(), before_.data(), slab_.size() * sizeof(float)),
      0);
  EXPECT_TRUE(call.OutputsUntouched());
}

TEST_P(OverlapTest, AdjacentIsAccepted) {
  ValidCall call;
  Place(call, 1);
  ASSERT_EQ(sdpa_attention(nullptr, &call.args), SDPA_OK) << sdpa_last_error();
  EXPECT_TRUE(MatchesReference(call.args, kTolerance));
}

const Placement kPlacements[] = {
    {"out_after_q", false, Role::kQ},
    {"out_after_k", false, Role::kK},
    {"out_after_v", false, Role::kV},
    {"out_after_mask", false, Role::kMask},
    {"lse_after_q", true, Role::kQ},
    {"lse_after_v", true, Role::kV},
    {"lse_after_mask", true, Role::kMask},
    {"lse_after_out", true, Role::kOut},
};

INSTANTIATE_TEST_SUITE_P(Api, OverlapTest, ::testing::ValuesIn(kPlacements),
                         [](const ::testing::TestParamInfo<Placement>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
