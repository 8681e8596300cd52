// The fused attention kernel, compiled once per Highway target.
//
// One task = all query heads of one KV head, a range of query positions, a
// range of keys. Its rows (head, position) are cut into tiles of rt rows.
// For each block of kKeysPerBlock keys (K/V block stays in L2) and each tile:
//   S = Q_tile·K_blockᵀ          (qk_tile-inl.h; only keys some row can see)
//   mask, online softmax         (online_softmax-inl.h)
//   O = O·alpha + P·V_block      (pv_tile-inl.h)
// and at the end O / l, lse = m + log2 l (in ln units). No buffer grows with
// Tq x Tk. The results of a row do not depend on which tile or task it is
// in: every lane does the same arithmetic in the same order, and a skipped
// (invisible) key or block leaves a row's state bit-for-bit unchanged.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/attention.cc"
#include "src/kernels/attention.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "src/elem_type.h"
#include "src/kernels/workspace.h"

// Per-target code:
#include "src/kernels/exp2-inl.h"
#include "src/kernels/online_softmax-inl.h"
#include "src/kernels/pv_bf16_tile-inl.h"
#include "src/kernels/pv_tile-inl.h"
#include "src/kernels/qk_bf16_tile-inl.h"
#include "src/kernels/qk_quad_tile-inl.h"
#include "src/kernels/qk_tile-inl.h"

HWY_BEFORE_NAMESPACE();
namespace sdpa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Tiles per register file: accumulators + operands must fit without spills.
#if HWY_TARGET == HWY_SCALAR
constexpr int kQkQueryVecs = 2;  // x kQkKeys keys
constexpr int kQkKeys = 4;
constexpr int kPvRows = 4;  // x kPvVecs vectors of V columns
constexpr int kPvVecs = 2;
constexpr int kPvWideRows = 1;  // decode: rows x kPvWideVecs in one pass
constexpr int kPvWideVecs = 8;
constexpr int kPvTallRows = 0;  // decode: taller tiles, kPvTallVecs wide
constexpr int kPvTallVecs = 1;
#elif HWY_ARCH_X86 && HWY_TARGET != HWY_AVX3 && HWY_TARGET != HWY_AVX3_DL
// 16 vector registers (SSSE3, SSE4, AVX2). AVX2: 4 query vectors x 3 keys,
// 12 accumulators. SSSE3/SSE4 run Q·Kᵀ in 8-row passes (QkPairRows): 24
// rows a tile are four whole 6-row P·V groups, where 16 left a 4-row group
// (its 8 accumulators ran 15% slower per row, on a quarter of the rows).
constexpr int kQkQueryVecs = kPairedQueries ? 6 : 4;
constexpr int kQkKeys = 3;
constexpr int kPvRows = 6;
constexpr int kPvVecs = 2;
constexpr int kPvWideRows = 1;
constexpr int kPvWideVecs = 8;
constexpr int kPvTallRows = 0;
constexpr int kPvTallVecs = 1;
#else
// 32 vector registers (AVX-512, NEON, SVE).
constexpr int kQkQueryVecs = 3;
constexpr int kQkKeys = 8;
constexpr int kPvRows = 6;
constexpr int kPvVecs = 4;
constexpr int kPvWideRows = 3;
constexpr int kPvWideVecs = 8;
constexpr int kPvTallRows = 8;
constexpr int kPvTallVecs = 3;
#endif

// Keys per K/V block. Few-row (decode) tasks stream K and V from memory:
// longer blocks keep each stream running long enough for the prefetchers.
// Each block costs every tile a pass over its O rows (load, scale by alpha,
// store) and the tiles' loop entries and exits. AVX-512's 48-row tiles
// measured 1-3% faster prefill with 256 keys (a 48 KiB score tile) than
// with 128 in every one of 24 interleaved pairs (T2048/T4096, D64/D128,
// causal or not; causal T512 1% slower, 512 keys no better than 256);
// AVX2 and SSE4 measured no change, so they keep 128.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int64_t kKeysPerBlock = 256;
#else
constexpr int64_t kKeysPerBlock = 128;
#endif
constexpr int64_t kKeysPerDecodeBlock = 512;
static_assert(kKeysPerDecodeBlock % kKeysPerBlock == 0, "split alignment");
constexpr float kLog2e = 1.44269504088896340736f;
constexpr double kLn2 = 0.69314718055994530942;

size_t RoundUp(size_t x, size_t multiple) {
  return (x + multiple - 1) / multiple * multiple;
}

// Few rows per KV head (decoding): one score per horizontal sum beats wasting
// most lanes of the rows-in-lanes form. Depends only on the shape, never on
// the thread count, so results stay reproducible.
bool UseDotForm(size_t rows, size_t lanes) { return 2 * rows <= lanes; }

// Visible key range of each row and its hull over a tile.
struct TileRange {
  int64_t min_first, max_first, min_last, max_last;
  bool empty;  // no row of the tile sees any key of the task
};

// Carves the per-task scratch into aligned arrays.
class ScratchCarver {
 public:
  explicit ScratchCarver(float* base) : next_(base) {}
  float* Take(size_t floats) {
    float* p = next_;
    next_ += RoundUp(floats, 16);  // keep every array 64-byte aligned
    return p;
  }
  static size_t Size(size_t floats) { return RoundUp(floats, 16); }

 private:
  float* next_;
};

// Copies `count` rows of `dim` elements of type `type`, starting at element
// offset `first` of `base`, into `dst` rows of `dst_stride` floats (widening
// BF16/F16), zero-filling columns [dim, dst_stride).
template <class D>
void PackRows(D d, const void* base, ElemType type, int64_t first,
              int64_t row_stride, int64_t col_stride, size_t count, size_t dim,
              float* HWY_RESTRICT dst, size_t dst_stride) {
  const size_t N = hn::Lanes(d);
  // Contiguous rows are prefetched ~8 KiB ahead: a decode block is packed
  // straight from memory, one row after the other, and the hardware
  // prefetchers alone left F16 K/V decoding (AVX-512, H32 Tq1 Tk4096, one
  // thread) at 5.2-5.5 ms a call; 32 rows (8 KiB) ahead, 4.2 (8 rows: 4.8-5.0).
  const size_t elem_bytes = ElemBytes(type);
  const size_t row_bytes = std::max<size_t>(dim * elem_bytes, 1);
  const size_t ahead_rows = (8192 + row_bytes - 1) / row_bytes;
  for (size_t r = 0; r < count; ++r) {
    const int64_t row = first + static_cast<int64_t>(r) * row_stride;
    float* HWY_RESTRICT out = dst + r * dst_stride;
    size_t c = 0;
    if (col_stride == 1 && r + ahead_rows < count) {
      const char* ahead =
          static_cast<const char*>(base) +
          (row + static_cast<int64_t>(ahead_rows) * row_stride) *
              static_cast<int64_t>(elem_bytes);
      for (size_t b = 0; b < dim * elem_bytes; b += 64) {
        hwy::Prefetch(ahead + b);
      }
    }
    if (col_stride == 1) {
      if (type == ElemType::kF32) {
        std::memcpy(out, static_cast<const float*>(base) + row,
                    dim * sizeof(float));
        c = dim;
      } else if (type == ElemType::kBF16) {
        const hn::Rebind<hwy::bfloat16_t, D> dbf;
        const hwy::bfloat16_t* src =
            static_cast<const hwy::bfloat16_t*>(base) + row;
        for (; c + N <= dim; c += N) {
          hn::StoreU(hn::PromoteTo(d, hn::LoadU(dbf, src + c)), d, out + c);
        }
      } else {
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2) || \
    (HWY_ARCH_ARM_A64 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128)
        // Hardware half conversion (F16C, NEON, SVE) only: hwy 1.0.3's
        // emulation (SSE4, SSSE3, EMU128, SCALAR) turns Inf/NaN into large
        // finite numbers, so those targets take the exact scalar path.
        const hn::Rebind<hwy::float16_t, D> dh;
        const hwy::float16_t* src =
            static_cast<const hwy::float16_t*>(base) + row;
        for (; c + N <= dim; c += N) {
          hn::StoreU(hn::PromoteTo(d, hn::LoadU(dh, src + c)), d, out + c);
        }
#endif
      }
    }
    for (; c < dim; ++c) {
      out[c] = LoadElem(base, row + static_cast<int64_t>(c) * col_stride, type);
    }
    for (c = dim; c < dst_stride; ++c) out[c] = 0.0f;
  }
}

// Whether rows x cols floats hold no Inf/NaN: x * 0 is 0 exactly when x is
// finite, so one vector sum answers for a whole row. Four sums, so that the
// check of a task's output (every task, see Run) is not one chain of FMA
// latencies (0.7% of the kernel's time at T512 with one).
template <class D, class T>
bool AllFinite(D d, const T* HWY_RESTRICT data, size_t rows, size_t cols,
               ptrdiff_t row_stride) {
  const size_t N = hn::Lanes(d);
  const auto zero = hn::Zero(d);
  auto acc0 = zero, acc1 = zero, acc2 = zero, acc3 = zero;
  float tail = 0.0f;
  for (size_t r = 0; r < rows; ++r) {
    const T* row = data + static_cast<ptrdiff_t>(r) * row_stride;
    size_t c = 0;
    for (; c + 4 * N <= cols; c += 4 * N) {
      acc0 = hn::MulAdd(LoadWide(d, row + c), zero, acc0);
      acc1 = hn::MulAdd(LoadWide(d, row + c + N), zero, acc1);
      acc2 = hn::MulAdd(LoadWide(d, row + c + 2 * N), zero, acc2);
      acc3 = hn::MulAdd(LoadWide(d, row + c + 3 * N), zero, acc3);
    }
    for (; c + N <= cols; c += N) {
      acc0 = hn::MulAdd(LoadWide(d, row + c), zero, acc0);
    }
    const hn::CappedTag<float, 1> d1;
    for (; c < cols; ++c) {
      tail += hn::GetLane(hn::Mul(LoadWide(d1, row + c), hn::Zero(d1)));
    }
  }
  const auto acc = hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3));
  return tail == 0.0f && hn::GetLane(hn::SumOfLanes(d, acc)) == 0.0f;
}

// `count` rows of `dim` floats (rows[i * row_stride ...]) into a Q tile at
// lanes [lane0, lane0 + count), element e of row i at QueryPackOffset(e,
// lane0 + i, rt). Four rows at a time go as 4 x 4 blocks transposed in
// 128-bit vectors (paired: 64-bit interleaves) rather than one scalar store
// per element (which was 3% of the kernel's time at T512).
HWY_INLINE void StoreRowsTransposed(const float* HWY_RESTRICT rows,
                                    size_t count, size_t row_stride, size_t dim,
                                    float* HWY_RESTRICT tile, size_t rt,
                                    size_t lane0) {
  size_t e = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::CappedTag<float, 4> d4;
  if (count == 4 && hn::Lanes(d4) == 4) {
    const hn::Repartition<uint64_t, decltype(d4)> d64;
    for (; e + 4 <= dim; e += 4) {
      const auto a = hn::LoadU(d4, rows + e);
      const auto b = hn::LoadU(d4, rows + row_stride + e);
      const auto c = hn::LoadU(d4, rows + 2 * row_stride + e);
      const auto d = hn::LoadU(d4, rows + 3 * row_stride + e);
      if constexpr (kPairedQueries) {
        // Pair e/2 holds [a0 a1 b0 b1][c0 c1 d0 d1], pair e/2 + 1 the rest.
        const auto ab = hn::BitCast(d64, a), bb = hn::BitCast(d64, b);
        const auto cb = hn::BitCast(d64, c), db = hn::BitCast(d64, d);
        float* p0 = tile + QueryPackOffset(e, lane0, rt);
        float* p1 = tile + QueryPackOffset(e + 2, lane0, rt);
        hn::Store(hn::BitCast(d4, hn::InterleaveLower(d64, ab, bb)), d4, p0);
        hn::Store(hn::BitCast(d4, hn::InterleaveLower(d64, cb, db)), d4,
                  p0 + 4);
        hn::Store(hn::BitCast(d4, hn::InterleaveUpper(d64, ab, bb)), d4, p1);
        hn::Store(hn::BitCast(d4, hn::InterleaveUpper(d64, cb, db)), d4,
                  p1 + 4);
      } else {
        const auto t0 = hn::InterleaveLower(d4, a, b);  // a0 b0 a1 b1
        const auto t1 = hn::InterleaveUpper(d4, a, b);  // a2 b2 a3 b3
        const auto t2 = hn::InterleaveLower(d4, c, d);  // c0 d0 c1 d1
        const auto t3 = hn::InterleaveUpper(d4, c, d);  // c2 d2 c3 d3
        float* col = tile + e * rt + lane0;
        hn::Store(hn::ConcatLowerLower(d4, t2, t0), d4, col);
        hn::Store(hn::ConcatUpperUpper(d4, t2, t0), d4, col + rt);
        hn::Store(hn::ConcatLowerLower(d4, t3, t1), d4, col + 2 * rt);
        hn::Store(hn::ConcatUpperUpper(d4, t3, t1), d4, col + 3 * rt);
      }
    }
  }
#endif
  for (; e < dim; ++e) {
    for (size_t i = 0; i < count; ++i) {
      tile[QueryPackOffset(e, lane0 + i, rt)] = rows[i * row_stride + e];
    }
  }
}

// Keys per Q·Kᵀ tile of q_vecs query vectors. At least 8 accumulators
// (independent FMA chains) however few the rows: fewer cannot hide the FMA
// latency (4 cycles x 2 pipes). One query vector x kQkKeys = 3 keys ran
// 8-row decoding (Tq 8) at 19% of AVX2's peak.
constexpr int QkKeysFor(int q_vecs) {
  return kPairedQueries ? PairedKeysFor(q_vecs)
         : q_vecs == 1  ? std::max(kQkKeys, 8)
         : q_vecs == 2  ? std::max(kQkKeys, 4)
                        : kQkKeys;
}

// QkLanesBlock for a run-time q_vecs in [kQVecs, kQkQueryVecs].
template <int kQVecs, class D>
void QkLanesFor(D d, size_t q_vecs, const float* q_tile, size_t rt, size_t dim,
                const float* k, ptrdiff_t k_row_stride, size_t num_keys,
                const RowStream* ahead, size_t num_ahead, float* s,
                float* s_max) {
  if constexpr (kQVecs <= kQkQueryVecs) {
    if (q_vecs == kQVecs) {
      QkLanesBlock<kQVecs, QkKeysFor(kQVecs)>(d, q_tile, rt, dim, k,
                                              k_row_stride, num_keys, ahead,
                                              num_ahead, s, s_max);
    } else {
      QkLanesFor<kQVecs + 1>(d, q_vecs, q_tile, rt, dim, k, k_row_stride,
                             num_keys, ahead, num_ahead, s, s_max);
    }
  } else {
    HWY_ASSERT(false);  // q_vecs is in [1, kQkQueryVecs]
  }
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// QkBf16Block for a run-time q_vecs in [kQVecs, kQkQueryVecs].
template <int kQVecs>
void QkBf16For(size_t q_vecs, const uint32_t* q_pairs, size_t rt, size_t pairs,
               const uint16_t* k, ptrdiff_t k_row_stride, size_t num_keys,
               float score_scale, const RowStreamOf<uint16_t>* k_ahead,
               float* s, float* s_max) {
  if constexpr (kQVecs <= kQkQueryVecs) {
    if (q_vecs == kQVecs) {
      QkBf16Block<kQVecs>(q_pairs, rt, pairs, k, k_row_stride, num_keys,
                          score_scale, k_ahead, kPrefetchKeys, s, s_max);
    } else {
      QkBf16For<kQVecs + 1>(q_vecs, q_pairs, rt, pairs, k, k_row_stride,
                            num_keys, score_scale, k_ahead, s, s_max);
    }
  } else {
    HWY_ASSERT(false);  // q_vecs is in [1, kQkQueryVecs]
  }
}
#endif

// S of one tile; with s_max != nullptr (rows-in-lanes forms only) also the
// lanes' maximum score, into s_max. K (TK) and V (TV) may be 16-bit only in
// the dot form.
template <class D, class TK, class TV>
void QkForTile(D d, bool dot_form, size_t q_vecs, const float* q_tile,
               size_t rt, size_t tile_rows, size_t dim, size_t dim_padded,
               const TK* k, ptrdiff_t k_row_stride, size_t num_keys,
               const RowStreamOf<TK>& k_ahead, const RowStreamOf<TV>& v_ahead,
               size_t num_ahead, bool values_early, bool streamed, float* s,
               float* s_max) {
  if (dot_form) {
    HWY_DASSERT(s_max == nullptr);
    // The tall decoding tiles (7-8 rows on AVX-512: 8-query decoding, 8:1
    // GQA) score f32 K in quad tiles (qk_quad_tile-inl.h). 16-bit K rows
    // read in place, and head dims past kQuadMaxDim, keep QkDotBlock.
    if constexpr (kQuadTiles && std::is_same_v<TK, float>) {
      if (!streamed && tile_rows > 4 && dim_padded <= kQuadMaxDim) {
        QkQuadBlock(d, q_tile, tile_rows, dim_padded, k, k_row_stride, num_keys,
                    num_ahead > 0 ? k_ahead.count : num_keys,
                    num_ahead > 1 ? &v_ahead : nullptr, kPrefetchValueRows,
                    values_early && num_ahead > 1, s, rt);
        return;
      }
    }
    QkDotBlock(d, q_tile, tile_rows, dim_padded, k, k_row_stride, num_keys,
               num_ahead > 0 ? k_ahead.count : num_keys,
               num_ahead > 1 ? &v_ahead : nullptr, kPrefetchValueRows,
               values_early && num_ahead > 1, streamed, s, rt);
    return;
  }
  if constexpr (std::is_same_v<TK, float> && std::is_same_v<TV, float>) {
    const RowStream ahead[2] = {k_ahead, v_ahead};
    QkLanesFor<1>(d, q_vecs, q_tile, rt, dim, k, k_row_stride, num_keys, ahead,
                  num_ahead, s, s_max);
  } else {
    HWY_ASSERT(false);  // 16-bit K/V are read in place by the dot form only
  }
}

// The element type of F16 rows read in place: never so where the target
// widens F16 only while packing (then a placeholder, so that no F16 kernel
// is compiled there).
using F16Rows =
    std::conditional_t<kHardwareF16, hwy::float16_t, hwy::bfloat16_t>;

// f(rows as a typed pointer): f32 rows, or where `widened`, 16-bit rows of
// `type` read in place.
template <class F>
void WithTypedRows(bool widened, ElemType type, const void* rows, F&& f) {
  if (!widened) {
    f(static_cast<const float*>(rows));
  } else if (type == ElemType::kBF16) {
    f(static_cast<const hwy::bfloat16_t*>(rows));
  } else {
    f(static_cast<const F16Rows*>(rows));
  }
}

// Whether 16-bit K or V rows of `type` can be read in place (and widened in
// registers) rather than packed: BF16 everywhere, F16 where the hardware
// widens it (kHardwareF16).
bool WidenedInPlace(ElemType type) {
  return type == ElemType::kBF16 || (type == ElemType::kF16 && kHardwareF16);
}

// One task, planned once from the problem: its tiles, which operands are
// used in place and which are packed, and its scratch.
class TaskRunner {
 public:
  // bf16_dot: the CPU has AVX512_BF16 and the caller chose the ISA that
  // uses it (AVX3_ZEN4).
  TaskRunner(const Problem& p, const Task& t, bool bf16_dot);
  void Run();

 private:
  // Row r of the task is query head kv_head * group + r / num_q at position
  // q_begin + r % num_q.
  int64_t HeadOf(size_t r) const {
    return t_.kv_head * group_ + static_cast<int64_t>(r) / num_q_;
  }
  int64_t PosOf(size_t r) const {
    return t_.q_begin + static_cast<int64_t>(r) % num_q_;
  }
  // A task of one tile (every dot-form task: at most N/2 rows) reads each
  // K/V block once, from memory, so its P·V tiles prefetch V as well (the
  // Q·Kᵀ step prefetches K and V for the first tile of every block).
  bool StreamsKeysAndValues() const { return num_tiles_ == 1; }
  // Decoding tiles whose P·V runs in one pass over each V row (PvWideRows).
  bool WidePvTiles(size_t tile_rows) const {
    return dot_form_ && tile_rows <= 2 * kPvWideRows;
  }
  // Decoding reads each K/V byte once, so 16-bit K and V rows (unit element
  // stride, a whole number of vectors) are read in place and widened in
  // registers rather than packed into f32 rows first, which cost a pass
  // over memory and one over L2 for every block.
  bool KeysWidenedInPlace() const {
    return dot_form_ && WidenedInPlace(p_.k_type) && p_.k_strides[3] == 1 &&
           dim_ % lanes_ == 0;
  }
  bool ValuesWidenedInPlace() const {
    return dot_form_ && WidenedInPlace(p_.v_type) && p_.v_strides[3] == 1 &&
           vdim_ % lanes_ == 0;
  }
  // BF16 Q and K on a CPU with AVX512_BF16: Q·Kᵀ on BF16 dot products
  // (qk_bf16_tile-inl.h), K read in place (unit element stride; for the
  // rows-in-lanes tile an even head dim, as it broadcasts K in pairs).
  bool QkOnBf16Dots(bool bf16_dot) const {
    return kBf16DotTarget && bf16_dot && p_.q_type == ElemType::kBF16 &&
           p_.k_type == ElemType::kBF16 && p_.k_strides[3] == 1 &&
           (dot_form_ || dim_ % 2 == 0);
  }
  // BF16 V where the caller allows BF16 weights (SDPA_FLAG_BF16_WEIGHTS),
  // on a CPU with AVX512_BF16: P·V on BF16 dot products
  // (pv_bf16_tile-inl.h), V packed in key pairs. Prefill tiles only: the
  // dot form reads V in place.
  bool PvOnBf16Dots(bool bf16_dot) const {
    return kBf16DotTarget && bf16_dot && p_.bf16_weights && !dot_form_ &&
           p_.v_type == ElemType::kBF16 && p_.v_strides[3] == 1;
  }
  void CarveScratch();
  void PackQueries();
  bool PackQueryRows(float scale, float smallest, bool as_pairs);
  void ComputeVisibleRanges();

  // What one K/V block [j0, j1) has prepared so far, shared by its tiles.
  struct Block {
    int64_t j0, j1;
    bool k_packed = false, v_packed = false;
    int v_finite = -1;  // unknown until a masked tile needs to know
    // pv_bf16_: V packed in key pairs (1), or unknown (-1), or not (0:
    // PackValuePairs refused it, and the block's P·V runs on f32).
    int v_pairs = -1;
    bool fetched = false;  // a tile has prefetched its K and V rows
  };
  // Rows [a, b) of K or V, in place or packed (as f32 rows) on first use:
  // f32 rows, or 16-bit rows of the caller's type where k_wide_ / v_wide_.
  const void* KeyRows(Block& block, int64_t a, ptrdiff_t* row_stride);
  const void* ValueRows(Block& block, int64_t a, ptrdiff_t* row_stride);
  // For pv_bf16_: the pair row of V holding key a, V packed in key pairs
  // from the block's first key on first use; nullptr where the block holds
  // values the BF16 dot product cannot take (PackValuePairs).
  const uint32_t* ValuePairs(Block& block, int64_t a, ptrdiff_t* row_stride);
  TileMasks BuildMasks(size_t tile, int64_t a, size_t num_keys,
                       bool range_masked);
  void ProcessTile(Block& block, size_t tile);
  // ProcessTile with K rows of TK and V rows of TV.
  // v_pair_offset >= 0: v_rows are V pairs (ValuePairs), and key a is the
  // second of its pair where it is 1.
  template <class TK, class TV>
  void ProcessTileRows(Block& block, size_t tile, int64_t a, size_t num_keys,
                       bool range_masked, const TK* k_rows,
                       ptrdiff_t k_row_stride, const TV* v_rows,
                       ptrdiff_t v_row_stride, int v_pair_offset);
  // Every key block of the task into o_acc_, row_max_, row_sum_, seen_.
  void Accumulate();
  // O = O·alpha + P·V for one tile (prefetching V when decoding).
  template <bool kSkipZeros, class TV>
  void PvForTile(const TV* v_rows, ptrdiff_t v_row_stride, size_t vvecs,
                 size_t row0, size_t tile_rows, size_t num_keys, float* o_tile);
  void WriteRows();

  const hn::ScalableTag<float> d_;
  const Problem& p_;
  const Task& t_;
  const size_t lanes_;
  const int64_t group_, num_q_;
  const size_t rows_, dim_, vdim_, dim_padded_, vdim_padded_;
  const bool dot_form_;
  const size_t q_vecs_;
  const size_t rt_;  // rows per tile = lanes of one score row
  const size_t num_tiles_, rows_padded_;
  const int64_t keys_per_block_;
  const size_t bc_;
  const size_t q_tile_floats_;
  // K / V rows read in place as 16-bit and widened in registers (decoding).
  const bool k_wide_, v_wide_;
  // Q·Kᵀ on BF16 dot products (QkOnBf16Dots), until PackQueries finds
  // that Q cannot carry the scale's power of two exactly.
  bool qk_bf16_;
  float bf16_score_scale_ = 1.0f;  // the rest of the scale, in [1, 2)
  const bool pv_bf16_;             // PvOnBf16Dots
  bool k_in_place_;                // false again where qk_bf16_ falls back
  const bool v_in_place_, has_mask_;
  // A mask that is the same for every row of the task: one scalar per key.
  const bool mask_per_key_;
  // Element offsets of this KV head.
  const int64_t k_head_, v_head_;

  float *q_pack_, *o_acc_, *row_max_, *row_sum_, *alpha_, *seen_;
  float* q_row_;            // 4 rows of dim_padded_: PackQueries' staging
  int64_t *first_, *last_;  // visible keys of each row, inclusive
  float *first_rel_, *last_rel_, *s_tile_, *mask_tile_, *k_pack_, *v_pack_;
  float* s_max_;    // a tile's maximum score per lane (see ProcessTile)
  float* ones_;     // rt_ 1s: PvBlock's alpha after a block's first key run
  float* pv_wide_;  // PvBlock's expanded weights (SSE targets)
  std::vector<TileRange> ranges_;
  bool scale_scores_ = false;  // see PackQueries
  float weight_bias_ = 0.0f;   // see Run
};

TaskRunner::TaskRunner(const Problem& p, const Task& t, bool bf16_dot)
    : p_(p),
      t_(t),
      lanes_(hn::Lanes(d_)),
      group_(p.q_heads / p.kv_heads),
      num_q_(t.q_end - t.q_begin),
      rows_(static_cast<size_t>(group_ * num_q_)),
      dim_(static_cast<size_t>(p.head_dim)),
      vdim_(static_cast<size_t>(p.value_dim)),
      dim_padded_(RoundUp(dim_, lanes_)),
      vdim_padded_(RoundUp(vdim_, lanes_)),
      dot_form_(UseDotForm(rows_, lanes_)),
      q_vecs_(dot_form_ ? 1
                        : std::min<size_t>(kQkQueryVecs,
                                           (rows_ + lanes_ - 1) / lanes_)),
      rt_(q_vecs_ * lanes_),
      num_tiles_((rows_ + rt_ - 1) / rt_),
      rows_padded_(num_tiles_ * rt_),
      keys_per_block_(dot_form_ ? kKeysPerDecodeBlock : kKeysPerBlock),
      bc_(static_cast<size_t>(keys_per_block_)),
      q_tile_floats_(dot_form_ ? rt_ * dim_padded_
                               : rt_ * RoundUp(dim_, kPairedQueries ? 2 : 1)),
      k_wide_(KeysWidenedInPlace()),
      v_wide_(ValuesWidenedInPlace()),
      qk_bf16_(QkOnBf16Dots(bf16_dot)),
      pv_bf16_(PvOnBf16Dots(bf16_dot)),
      k_in_place_(k_wide_ || qk_bf16_ ||
                  (p.k_type == ElemType::kF32 && p.k_strides[3] == 1 &&
                   (!dot_form_ || dim_ % lanes_ == 0))),
      v_in_place_(v_wide_ || (p.v_type == ElemType::kF32 &&
                              p.v_strides[3] == 1 && vdim_ % lanes_ == 0)),
      has_mask_(p.mask_kind != MaskKind::kNone),
      mask_per_key_(has_mask_ && p.mask_strides[1] == 0 &&
                    p.mask_strides[2] == 0),
      k_head_(t.batch * p.k_strides[0] + t.kv_head * p.k_strides[1]),
      v_head_(t.batch * p.v_strides[0] + t.kv_head * p.v_strides[1]),
      ranges_(num_tiles_) {
  CarveScratch();
}

void TaskRunner::CarveScratch() {
  using C = ScratchCarver;
  // BF16 dot tasks read K in place, but keep a block to pack it into in
  // case PackQueries sends them to the f32 tiles.
  const bool k_packable = !k_in_place_ || qk_bf16_;
  const size_t floats =
      C::Size(num_tiles_ * q_tile_floats_) + C::Size(4 * dim_padded_) +
      C::Size(rows_padded_ * vdim_padded_) + 4 * C::Size(rows_padded_) +
      2 * C::Size(2 * rows_padded_) +  // int64 first/last
      4 * C::Size(rt_) + C::Size(bc_ * rt_) +
      (has_mask_ ? C::Size(bc_ * rt_) : 0) +
      (k_packable ? C::Size(bc_ * dim_padded_) : 0) +
      (v_in_place_ ? 0 : C::Size(bc_ * vdim_padded_)) +
      C::Size(PvBlockScratch<kPvRows>(d_, bc_));
  ScratchCarver carve(ThreadScratch(floats));
  q_pack_ = carve.Take(num_tiles_ * q_tile_floats_);
  q_row_ = carve.Take(4 * dim_padded_);
  o_acc_ = carve.Take(rows_padded_ * vdim_padded_);
  row_max_ = carve.Take(rows_padded_);
  row_sum_ = carve.Take(rows_padded_);
  alpha_ = carve.Take(rows_padded_);
  seen_ = carve.Take(rows_padded_);
  first_ = reinterpret_cast<int64_t*>(carve.Take(2 * rows_padded_));
  last_ = reinterpret_cast<int64_t*>(carve.Take(2 * rows_padded_));
  first_rel_ = carve.Take(rt_);
  last_rel_ = carve.Take(rt_);
  s_max_ = carve.Take(rt_);
  ones_ = carve.Take(rt_);
  std::fill(ones_, ones_ + rt_, 1.0f);
  s_tile_ = carve.Take(bc_ * rt_);
  mask_tile_ = has_mask_ ? carve.Take(bc_ * rt_) : nullptr;
  k_pack_ = k_packable ? carve.Take(bc_ * dim_padded_) : nullptr;
  v_pack_ = v_in_place_ ? nullptr : carve.Take(bc_ * vdim_padded_);
  pv_wide_ = carve.Take(PvBlockScratch<kPvRows>(d_, bc_));
}

// Q, widened to f32 and pre-scaled into the log2 domain: transposed
// (qt[e][row], or paired on SSSE3/SSE4: QueryPackOffset) for the
// rows-in-lanes form, row-major for the dot form.
// If pre-scaling would overflow a finite element (huge |q|·scale, even where
// the scores themselves are small) or flush a nonzero one to 0 (tiny scale:
// 0·Inf would then be NaN where q·k·scale is ±Inf), Q is packed unscaled
// and the scores are scaled instead (TileMasks::scale_scores).
// For the BF16 dot tiles (qk_bf16_), Q is packed as BF16 pairs instead,
// each element multiplied by the power of two 2^(e - 1) of scale·log2(e) =
// m·2^e (m in [0.5, 1)); the tiles multiply the scores by the rest, 2m.
// Where that would overflow a finite element or make a nonzero one
// subnormal (the dot instruction reads subnormals as 0), or the scale is
// not positive, the task takes the f32 tiles.
void TaskRunner::PackQueries() {
  const float log2_scale = p_.scale * kLog2e;
  if (qk_bf16_) {
    int exponent = 0;
    const float mantissa = std::frexp(log2_scale, &exponent);
    const float power = std::ldexp(1.0f, exponent - 1);
    if (log2_scale > 0.0f && std::isfinite(log2_scale) && power > 0.0f &&
        std::isfinite(power) &&
        PackQueryRows(power, std::numeric_limits<float>::min(),
                      /*as_pairs=*/true)) {
      bf16_score_scale_ = 2.0f * mantissa;
      return;
    }
    // The f32 tiles: K is then packed into f32 rows, or read in place and
    // widened by the dot form, as for other types.
    qk_bf16_ = false;
    k_in_place_ = k_wide_;
  }
  // x·scale is 0 for a nonzero x exactly where it is below the smallest
  // subnormal.
  constexpr float kSmallest = std::numeric_limits<float>::denorm_min();
  if (PackQueryRows(log2_scale, kSmallest, /*as_pairs=*/false)) return;
  scale_scores_ = true;
  PackQueryRows(1.0f, kSmallest, /*as_pairs=*/false);
}

// Packs Q (see PackQueries), each element multiplied by `scale`; with
// as_pairs, as BF16 pairs in 32-bit words (the products being BF16 values
// exactly where this returns true): for the rows-in-lanes tile qp[p][row] =
// {q[row][2p], q[row][2p + 1]}, for the dot form rows of BF16 as they are,
// each 2 * dim_padded_ elements apart (the f32 rows' place). Rows past rows_
// are 0. False where a product overflowed a finite element, or a nonzero
// element's product fell below `smallest` in magnitude.
bool TaskRunner::PackQueryRows(float scale, float smallest, bool as_pairs) {
  using V = hn::Vec<decltype(d_)>;
  const V q_scale = hn::Set(d_, scale);
  const V zero = hn::Zero(d_);
  const V small = hn::Set(d_, smallest);
  auto inexact = hn::Lt(zero, zero);  // no lane
  // Row r of the task, widened and scaled into `row` (dim_padded_ floats);
  // as_pairs: then as BF16 pairs in its first dim_padded_ / 2 words.
  const auto pack_row = [&](size_t r, float* HWY_RESTRICT row) {
    const int64_t src = t_.batch * p_.q_strides[0] +
                        HeadOf(r) * p_.q_strides[1] +
                        PosOf(r) * p_.q_strides[2];
    PackRows(d_, p_.q, p_.q_type, src, 0, p_.q_strides[3], 1, dim_, row,
             dim_padded_);
    for (size_t e = 0; e < dim_padded_; e += lanes_) {
      const V x = hn::Load(d_, row + e);
      const V y = hn::Mul(x, q_scale);
      inexact = hn::Or(
          inexact, hn::Or(hn::AndNot(hn::IsFinite(y), hn::IsFinite(x)),
                          hn::And(hn::Ne(x, zero), hn::Lt(hn::Abs(y), small))));
      hn::Store(y, d_, row + e);
    }
    if (!as_pairs) return;
    // Each element is a BF16 value exactly: its upper 16 bits. Word p is
    // written after elements 2p and 2p + 1 are read.
    for (size_t p = 0; p < dim_padded_ / 2; ++p) {
      uint32_t lo, hi;
      std::memcpy(&lo, row + 2 * p, sizeof(lo));
      std::memcpy(&hi, row + 2 * p + 1, sizeof(hi));
      const uint32_t word = (lo >> 16) | (hi & 0xFFFF0000u);
      std::memcpy(row + p, &word, sizeof(word));
    }
  };
  std::memset(q_pack_, 0, num_tiles_ * q_tile_floats_ * sizeof(float));
  if (dot_form_) {
    // The dot form keeps rows as they are: scaled straight into the tile.
    for (size_t r = 0; r < rows_; ++r) {
      pack_row(r,
               q_pack_ + (r / rt_) * q_tile_floats_ + (r % rt_) * dim_padded_);
    }
  } else {
    // Four rows at a time, transposed into their tile (rows past rows_
    // are zero); one at a time where tiles are not a multiple of 4 rows
    // (SCALAR). BF16 pairs are transposed as words, moved bit for bit.
    const size_t group = rt_ % 4 == 0 ? 4 : 1;
    const size_t columns = as_pairs ? dim_ / 2 : dim_;
    for (size_t r0 = 0; r0 < rows_; r0 += group) {
      for (size_t i = 0; i < group; ++i) {
        float* row = q_row_ + i * dim_padded_;
        if (r0 + i < rows_) {
          pack_row(r0 + i, row);
        } else {
          std::memset(row, 0, dim_padded_ * sizeof(float));
        }
      }
      StoreRowsTransposed(q_row_, group, dim_padded_, columns,
                          q_pack_ + (r0 / rt_) * q_tile_floats_, rt_, r0 % rt_);
    }
  }
  return hn::AllFalse(d_, inexact);
}

// The keys of [kv_begin, kv_end) each row may see (causal and window rules),
// and their hull over each tile.
void TaskRunner::ComputeVisibleRanges() {
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max() / 4;
  for (size_t r = 0; r < rows_padded_; ++r) {
    int64_t lo = t_.kv_begin;
    int64_t hi = t_.kv_end - 1;
    if (r < rows_) {
      const int64_t diag = PosOf(r) + p_.diag_offset;
      if (p_.left >= 0) lo = std::max(lo, diag - p_.left);
      if (p_.right >= 0) hi = std::min(hi, diag + p_.right);
    }
    if (r >= rows_ || lo > hi) {
      lo = kNone;
      hi = -kNone;
    }
    first_[r] = lo;
    last_[r] = hi;
  }
  for (size_t tile = 0; tile < num_tiles_; ++tile) {
    TileRange& range = ranges_[tile];
    range = {kNone, -kNone, kNone, -kNone, true};
    // Padding rows (r >= rows) are computed but never written out: they
    // must not force masking on every block.
    for (size_t r = tile * rt_; r < std::min(rows_, (tile + 1) * rt_); ++r) {
      range.max_first = std::max(range.max_first, first_[r]);
      range.min_last = std::min(range.min_last, last_[r]);
      if (first_[r] > last_[r]) continue;
      range.empty = false;
      range.min_first = std::min(range.min_first, first_[r]);
      range.max_last = std::max(range.max_last, last_[r]);
    }
  }
}

const void* TaskRunner::KeyRows(Block& block, int64_t a,
                                ptrdiff_t* row_stride) {
  if (k_in_place_) {
    *row_stride = static_cast<ptrdiff_t>(p_.k_strides[2]);
    return static_cast<const char*>(p_.k) +
           (k_head_ + a * p_.k_strides[2]) *
               static_cast<int64_t>(ElemBytes(p_.k_type));
  }
  const size_t packed_stride = dot_form_ ? dim_padded_ : dim_;
  *row_stride = static_cast<ptrdiff_t>(packed_stride);
  if (!block.k_packed) {
    PackRows(d_, p_.k, p_.k_type, k_head_ + block.j0 * p_.k_strides[2],
             p_.k_strides[2], p_.k_strides[3],
             static_cast<size_t>(block.j1 - block.j0), dim_, k_pack_,
             packed_stride);
    block.k_packed = true;
  }
  return k_pack_ + static_cast<size_t>(a - block.j0) * packed_stride;
}

const void* TaskRunner::ValueRows(Block& block, int64_t a,
                                  ptrdiff_t* row_stride) {
  if (v_in_place_) {
    *row_stride = static_cast<ptrdiff_t>(p_.v_strides[2]);
    return static_cast<const char*>(p_.v) +
           (v_head_ + a * p_.v_strides[2]) *
               static_cast<int64_t>(ElemBytes(p_.v_type));
  }
  *row_stride = static_cast<ptrdiff_t>(vdim_padded_);
  if (!block.v_packed) {
    PackRows(d_, p_.v, p_.v_type, v_head_ + block.j0 * p_.v_strides[2],
             p_.v_strides[2], p_.v_strides[3],
             static_cast<size_t>(block.j1 - block.j0), vdim_, v_pack_,
             vdim_padded_);
    block.v_packed = true;
  }
  return v_pack_ + static_cast<size_t>(a - block.j0) * vdim_padded_;
}

const uint32_t* TaskRunner::ValuePairs(Block& block, int64_t a,
                                       ptrdiff_t* row_stride) {
  // v_pack_ holds bc_ rows of vdim_padded_ floats: as many 32-bit words as
  // bc_ / 2 pair rows of vdim_padded_ words.
  auto* pairs = reinterpret_cast<uint32_t*>(v_pack_);
  if (block.v_pairs < 0) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    const auto* v = static_cast<const uint16_t*>(p_.v) + v_head_ +
                    block.j0 * p_.v_strides[2];
    block.v_pairs = PackValuePairs(v, static_cast<ptrdiff_t>(p_.v_strides[2]),
                                   static_cast<size_t>(block.j1 - block.j0),
                                   vdim_, pairs, vdim_padded_)
                        ? 1
                        : 0;
#else
    HWY_ASSERT(false);  // pv_bf16_ only where kBf16DotTarget
#endif
  }
  if (block.v_pairs == 0) return nullptr;
  *row_stride = static_cast<ptrdiff_t>(vdim_padded_);
  return pairs + static_cast<size_t>(a - block.j0) / 2 * vdim_padded_;
}

// Per-lane visible ranges relative to key a (only for tiles that straddle a
// causal/window boundary), and the mask in the log2 domain.
TileMasks TaskRunner::BuildMasks(size_t tile, int64_t a, size_t num_keys,
                                 bool range_masked) {
  TileMasks masks;
  masks.scale_scores = scale_scores_;
  masks.score_scale = p_.scale;
  const int64_t bc = static_cast<int64_t>(bc_);
  if (range_masked) {
    for (size_t lane = 0; lane < rt_; ++lane) {
      const size_t r = tile * rt_ + lane;
      const int64_t lo = std::max<int64_t>(first_[r] - a, -1);
      const int64_t hi = std::min<int64_t>(last_[r] - a, bc);
      first_rel_[lane] = static_cast<float>(std::min<int64_t>(lo, bc + 1));
      last_rel_[lane] = static_cast<float>(std::max<int64_t>(hi, -2));
    }
    masks.first = first_rel_;
    masks.last = last_rel_;
  }
  if (!has_mask_) return masks;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const bool additive = p_.mask_kind == MaskKind::kAdditiveF32;
  auto mask_value = [&](int64_t offset) {
    if (additive) {
      const float x = static_cast<const float*>(p_.mask)[offset];
      return x == neg_inf ? neg_inf : x * kLog2e;
    }
    return static_cast<const uint8_t*>(p_.mask)[offset] ? 0.0f : neg_inf;
  };
  const int64_t key_stride = p_.mask_strides[3];
  if (mask_per_key_) {
    const int64_t base = t_.batch * p_.mask_strides[0] + a * key_stride;
    for (size_t kk = 0; kk < num_keys; ++kk) {
      mask_tile_[kk] = mask_value(base + static_cast<int64_t>(kk) * key_stride);
    }
    masks.mask_row = mask_tile_;
    return masks;
  }
  for (size_t lane = 0; lane < rt_; ++lane) {
    const size_t r = tile * rt_ + lane;
    if (r >= rows_) {
      for (size_t kk = 0; kk < num_keys; ++kk) mask_tile_[kk * rt_ + lane] = 0;
      continue;
    }
    const int64_t base = t_.batch * p_.mask_strides[0] +
                         HeadOf(r) * p_.mask_strides[1] +
                         PosOf(r) * p_.mask_strides[2] + a * key_stride;
    for (size_t kk = 0; kk < num_keys; ++kk) {
      mask_tile_[kk * rt_ + lane] =
          mask_value(base + static_cast<int64_t>(kk) * key_stride);
    }
  }
  masks.mask_tile = mask_tile_;
  return masks;
}

// S = Q·Kᵀ, masks, online softmax, O = O·alpha + P·V for one tile and the
// keys of the block some row of the tile can see.
void TaskRunner::ProcessTile(Block& block, size_t tile) {
  const TileRange& range = ranges_[tile];
  if (range.empty) return;
  const int64_t a = std::max(block.j0, range.min_first);
  const int64_t b = std::min(block.j1, range.max_last + 1);
  if (a >= b) return;  // the whole tile is blind to this block
  const size_t num_keys = static_cast<size_t>(b - a);
  const bool range_masked = !(range.max_first <= a && range.min_last >= b - 1);

  ptrdiff_t k_row_stride, v_row_stride;
  const void* k_rows = KeyRows(block, a, &k_row_stride);
  // V pairs start at an even key of the block: key a is the second of its
  // pair where a - j0 is odd.
  const void* v_rows = pv_bf16_ ? ValuePairs(block, a, &v_row_stride) : nullptr;
  const int v_pair_offset =
      v_rows != nullptr ? static_cast<int>((a - block.j0) % 2) : -1;
  if (v_rows == nullptr) v_rows = ValueRows(block, a, &v_row_stride);
  WithTypedRows(
      k_wide_ || qk_bf16_, p_.k_type, k_rows, [&](const auto* k_typed) {
        WithTypedRows(v_wide_, p_.v_type, v_rows, [&](const auto* v_typed) {
          ProcessTileRows(block, tile, a, num_keys, range_masked, k_typed,
                          k_row_stride, v_typed, v_row_stride, v_pair_offset);
        });
      });
}

template <class TK, class TV>
void TaskRunner::ProcessTileRows(Block& block, size_t tile, int64_t a,
                                 size_t num_keys, bool range_masked,
                                 const TK* k_rows, ptrdiff_t k_row_stride,
                                 const TV* v_rows, ptrdiff_t v_row_stride,
                                 int v_pair_offset) {
  const size_t row0 = tile * rt_;
  const size_t tile_rows = std::min(rt_, rows_ - row0);
  // The first tile to reach a block takes its K and V from L3 or memory (the
  // others find them in L2): its Q·Kᵀ step prefetches both (the dot form: K
  // ahead of itself, and the first V rows while it finishes). AVX-512
  // prefill B1 H8 D128, one core: T4096 229-231 -> 240-241 GFLOP/s, T8192
  // 202-216 -> 242-244. Where K/V are read in place, the task's rows past
  // this block are the caller's memory too, and the prefetch runs on into
  // the next block's first rows (it used to stop 16 keys short of the end).
  const auto reach = [&](bool in_place) {
    return static_cast<size_t>((in_place ? t_.kv_end : block.j1) - a);
  };
  const RowStreamOf<TK> k_ahead{k_rows, k_row_stride, dim_, reach(k_in_place_)};
  const RowStreamOf<TV> v_ahead{v_rows, v_row_stride, vdim_,
                                reach(v_in_place_)};
  const size_t num_ahead = block.fetched ? 0 : 2;
  block.fetched = true;
  // A task's last tile may be partial (T2048 at 48 rows a tile: 128 rows
  // in three): its Q·Kᵀ and softmax cover only the vectors holding rows;
  // the scores and state of the lanes past them are never read.
  const size_t tile_vecs =
      dot_form_ ? q_vecs_ : (tile_rows + lanes_ - 1) / lanes_;
  const size_t width = tile_vecs * lanes_;  // rt_ in the dot form
  // Where no mask or rule changes the scores, the Q·Kᵀ tiles take their
  // maximum while it is in registers, and the softmax needs no pass of its
  // own for it (one core, B1 H8 T2048 D64: AVX-512 236-242 -> 248 GFLOP/s,
  // AVX2 119 -> 122). It is !masks.ChangesScores() (BuildMasks sets those
  // fields from exactly these; OnlineSoftmaxTile asserts it), taken before
  // the masks exist: built ahead of Q·Kᵀ, they stayed live across SSE's
  // tile and SSE4 B1 H8 T2048 ran 4-6% slower.
  const bool fused_max =
      !dot_form_ && !range_masked && !has_mask_ && !scale_scores_;
  if (fused_max) {
    std::fill(s_max_, s_max_ + width, -std::numeric_limits<float>::infinity());
  }
  // Decoding tiles taller than the wide P·V tiles pass over V in column
  // chunks, with more work per V row than its memory time, while their
  // Q·Kᵀ step leaves memory idle part of the time: it fetches half of V
  // early (QkDotBlock). One core, D128, medians of 3, better in each of
  // five interleaved rounds: AVX-512 H32 Tq8 Tk4096 110-123 -> 117-130
  // GFLOP/s, Tk32768 105-111 -> 111-115; AVX2 GQA 32:8 (4 rows, 6 x 2
  // tiles) Tk32768 49-50 -> 54-54.5, Tk4096 64-76 -> 72-75. Rows that the
  // wide tiles take (one pass over V; AVX-512 Tq5) measured 5-13% slower
  // with it, and AVX-512's 1-4 rows within the noise.
  const bool values_early = dot_form_ && !WidePvTiles(tile_rows);
  // The rows the wide tiles take have the least work per byte: their Q·Kᵀ
  // and P·V visit K and V rows in four streams over the block (StreamedRow:
  // one core, AVX-512, H32 Tq1 Tk32768 +15%, GQA 32:8 Tq1 Tk32768 +29-32%).
  // Taller tiles keep row order: streamed, AVX2 and SSE4 Tq8 measured 3-5%
  // slower on one core and up to 16% on two, and GQA 32:8 there (4 rows,
  // tall tiles on 16 registers) +6-11% from memory but -3-7% from L3.
  const bool streamed = WidePvTiles(tile_rows);  // dot form only
  if (qk_bf16_) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    if constexpr (std::is_same_v<TK, hwy::bfloat16_t>) {
      const float* q_tile = q_pack_ + tile * q_tile_floats_;
      const auto* k_bits = reinterpret_cast<const uint16_t*>(k_rows);
      if (dot_form_) {
        QkDotBf16Block(reinterpret_cast<const uint16_t*>(q_tile),
                       2 * dim_padded_, tile_rows, dim_, k_bits, k_row_stride,
                       num_keys, num_ahead > 0 ? k_ahead.count : num_keys,
                       num_ahead > 1 ? &v_ahead : nullptr, kPrefetchValueRows,
                       values_early && num_ahead > 1, streamed,
                       bf16_score_scale_, s_tile_, rt_);
      } else {
        const RowStreamOf<uint16_t> k_stream{k_bits, k_ahead.stride,
                                             k_ahead.elems, k_ahead.count};
        QkBf16For<1>(tile_vecs, reinterpret_cast<const uint32_t*>(q_tile), rt_,
                     dim_ / 2, k_bits, k_row_stride, num_keys,
                     bf16_score_scale_, num_ahead > 0 ? &k_stream : nullptr,
                     s_tile_, fused_max ? s_max_ : nullptr);
      }
    } else {
      HWY_ASSERT(false);  // qk_bf16_ reads BF16 K in place
    }
#else
    HWY_ASSERT(false);  // qk_bf16_ only where kBf16DotTarget
#endif
  } else {
    QkForTile(d_, dot_form_, tile_vecs, q_pack_ + tile * q_tile_floats_, rt_,
              tile_rows, dim_, dim_padded_, k_rows, k_row_stride, num_keys,
              k_ahead, v_ahead, num_ahead, values_early, streamed, s_tile_,
              fused_max ? s_max_ : nullptr);
  }
  const TileMasks masks = BuildMasks(tile, a, num_keys, range_masked);
  OnlineSoftmaxTile(d_, s_tile_, rt_, width, num_keys, masks,
                    fused_max ? s_max_ : nullptr, weight_bias_, row_max_ + row0,
                    row_sum_ + row0, alpha_ + row0, seen_ + row0);

  float* o_tile = o_acc_ + row0 * vdim_padded_;
  const size_t vvecs = vdim_padded_ / lanes_;
  if (v_pair_offset >= 0) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    // V was checked while paired (ValuePairs): hidden keys' weights of 0
    // add 0.
    const size_t pairs = RoundWeightPairs(s_tile_, rt_, width, num_keys,
                                          static_cast<size_t>(v_pair_offset));
    PvBf16Block(reinterpret_cast<const uint32_t*>(s_tile_), rt_, tile_rows,
                pairs, reinterpret_cast<const uint32_t*>(v_rows),
                static_cast<size_t>(v_row_stride), vvecs, alpha_ + row0, o_tile,
                vdim_padded_);
    return;
#else
    HWY_ASSERT(false);  // pv_bf16_ only where kBf16DotTarget
#endif
  }
  const bool masked = range_masked || has_mask_;
  if (masked && block.v_finite < 0) {
    // Checked over the whole block once; hidden keys' Inf/NaN must not reach
    // rows through 0 * Inf.
    block.v_finite =
        AllFinite(d_, v_rows - (a - block.j0) * v_row_stride,
                  static_cast<size_t>(block.j1 - block.j0), vdim_, v_row_stride)
            ? 1
            : 0;
  }
  if (masked && block.v_finite == 0) {
    MarkHiddenKeys(d_, s_tile_, rt_, width, num_keys, masks);
    PvForTile<true>(v_rows, v_row_stride, vvecs, row0, tile_rows, num_keys,
                    o_tile);
  } else {
    PvForTile<false>(v_rows, v_row_stride, vvecs, row0, tile_rows, num_keys,
                     o_tile);
  }
}

template <bool kSkipZeros, class TV>
void TaskRunner::PvForTile(const TV* v_rows, ptrdiff_t v_row_stride,
                           size_t vvecs, size_t row0, size_t tile_rows,
                           size_t num_keys, float* o_tile) {
  size_t c = 0;
  const bool wide = WidePvTiles(tile_rows);
  if (wide) {
    // Decoding: V rows in chunks of kPvWideVecs vectors, each in one pass
    // (tiles of more than 2 x kPvWideRows rows would read V three times).
    for (; c + kPvWideVecs <= vvecs; c += kPvWideVecs) {
      PvWideRows<kPvWideRows, kPvWideVecs, kSkipZeros>(
          d_, s_tile_, rt_, tile_rows, num_keys, v_rows + c * lanes_,
          v_row_stride, alpha_ + row0, o_tile + c * lanes_, vdim_padded_);
    }
    if (c == vvecs) return;
  }
  if (!wide && dot_form_ && tile_rows <= static_cast<size_t>(kPvTallRows)) {
    // Decoding tiles too tall for the wide tiles: all rows in one tile, V
    // in column chunks (8 rows at D128 on AVX-512, where 6 + 2-row tiles in
    // 4-vector chunks ran 8-query decoding at 125-132 GFLOP/s from L3;
    // 8 x 3: 140-151). kPvTallRows is 0 where there is no such tile.
    if constexpr (kPvTallRows > 0) {
      PvBlock<kPvTallRows, kPvTallVecs, kSkipZeros, true>(
          d_, s_tile_, rt_, tile_rows, num_keys, v_rows, v_row_stride, vvecs,
          alpha_ + row0, ones_, o_tile, vdim_padded_, pv_wide_);
    }
    return;
  }
  // The remaining columns (all of them for prefill) in narrower tiles.
  if (StreamsKeysAndValues()) {
    PvBlock<kPvRows, kPvVecs, kSkipZeros, true>(
        d_, s_tile_, rt_, tile_rows, num_keys, v_rows + c * lanes_,
        v_row_stride, vvecs - c, alpha_ + row0, ones_, o_tile + c * lanes_,
        vdim_padded_, pv_wide_);
  } else if constexpr (std::is_same_v<TV, float>) {
    PvBlock<kPvRows, kPvVecs, kSkipZeros, false>(
        d_, s_tile_, rt_, tile_rows, num_keys, v_rows, v_row_stride, vvecs,
        alpha_ + row0, ones_, o_tile, vdim_padded_, pv_wide_);
  } else {
    HWY_ASSERT(false);  // 16-bit V is read in place by decoding (one tile)
  }
}

// O / l (0 for a row that saw no key), lse = (m + log2 l)·ln 2.
void TaskRunner::WriteRows() {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (size_t r = 0; r < rows_; ++r) {
    const int64_t h = HeadOf(r);
    const int64_t i = PosOf(r);
    const int64_t dst = t_.batch * p_.out_strides[0] + h * p_.out_strides[1] +
                        i * p_.out_strides[2];
    const float* acc = o_acc_ + r * vdim_padded_;
    const float sum = row_sum_[r];
    // sum == 0 only when every score the row saw was -inf. With no key
    // visible at all that is defined as output 0, lse -inf; with keys
    // visible but scored -inf (Inf in Q or K) IEEE softmax gives NaN. NaN in
    // `sum` stays NaN through the reciprocal.
    const bool blind = sum == 0.0f && seen_[r] == 0.0f;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float empty_value = blind ? 0.0f : nan;
    const float inv = 1.0f / sum;
    size_t c = 0;
    if (sum != 0.0f && p_.out_type == ElemType::kF32 &&
        p_.out_strides[3] == 1) {
      float* HWY_RESTRICT out = static_cast<float*>(p_.out) + dst;
      const auto inv_v = hn::Set(d_, inv);
      for (; c + lanes_ <= vdim_; c += lanes_) {
        hn::StoreU(hn::Mul(hn::Load(d_, acc + c), inv_v), d_, out + c);
      }
    }
    for (; c < vdim_; ++c) {
      StoreElem(p_.out, dst + static_cast<int64_t>(c) * p_.out_strides[3],
                p_.out_type, sum == 0.0f ? empty_value : acc[c] * inv);
    }
    if (p_.lse != nullptr) {
      float* lse = p_.lse + t_.batch * p_.lse_strides[0] +
                   h * p_.lse_strides[1] + i * p_.lse_strides[2];
      *lse = sum == 0.0f
                 ? (blind ? neg_inf : nan)
                 : static_cast<float>((static_cast<double>(row_max_[r]) +
                                       std::log2(static_cast<double>(sum)) +
                                       weight_bias_) *
                                      kLn2);
    }
  }
}

void TaskRunner::Accumulate() {
  std::fill(row_max_, row_max_ + rows_padded_,
            -std::numeric_limits<float>::infinity());
  std::fill(row_sum_, row_sum_ + rows_padded_, 0.0f);
  std::fill(seen_, seen_ + rows_padded_, 0.0f);
  std::memset(o_acc_, 0, rows_padded_ * vdim_padded_ * sizeof(float));
  // The dot form writes only the tile's rows; the softmax reads every lane,
  // so the others start finite (0) and stay finite (P of earlier blocks).
  if (dot_form_) std::memset(s_tile_, 0, bc_ * rt_ * sizeof(float));
  // Key blocks outer, tiles inner: a K/V block stays in L2 for every tile.
  for (int64_t j0 = t_.kv_begin; j0 < t_.kv_end; j0 += keys_per_block_) {
    Block block{j0, std::min(t_.kv_end, j0 + keys_per_block_)};
    for (size_t tile = 0; tile < num_tiles_; ++tile) ProcessTile(block, tile);
  }
}

// O is accumulated unnormalised, sum_j p_j * v_j with p_j <= 1, so V elements
// near FLT_MAX can overflow it although O / l (a weighted mean of V rows) is
// representable. Checking the accumulator costs rows x Dv per task; only if
// it holds Inf/NaN is the task run again with every weight scaled by
// 2^-kWeightBias, which keeps sum_j p_j * |v_j| < FLT_MAX for up to 2^32 keys
// (weights below 2^-94 of the row's largest then flush to 0, a relative
// change below 2^-62). Inf/NaN that come from the inputs simply come out
// again, at twice the cost for that task.
void TaskRunner::Run() {
  constexpr float kWeightBias = 32.0f;
  PackQueries();
  ComputeVisibleRanges();
  Accumulate();
  if (!AllFinite(d_, o_acc_, rows_, vdim_,
                 static_cast<ptrdiff_t>(vdim_padded_))) {
    weight_bias_ = kWeightBias;
    Accumulate();
  }
  WriteRows();
}

void Attend(const Problem& p, const Task& t) {
  TaskRunner(p, t, /*bf16_dot=*/false).Run();
}

// The AVX3_ZEN4 ISA: Attend, with BF16 Q·Kᵀ on AVX512_BF16 dot products.
void AttendWithBf16Dots(const Problem& p, const Task& t) {
  TaskRunner(p, t, /*bf16_dot=*/true).Run();
}

void Exp2Floats(const float* x, float* y, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  std::vector<float> tail(N, 0.0f);  // the last n % N, padded to a vector
  for (size_t i = 0; i < n; i += N) {
    const size_t count = std::min(N, n - i);
    std::copy(x + i, x + i + count, tail.begin());
    hn::StoreU(FastExp2(d, hn::LoadU(d, tail.data())), d, tail.data());
    std::copy(tail.begin(), tail.begin() + count, y + i);
  }
}

const KernelTable* GetKernelTable() {
  static const KernelTable table = {
      &Attend, static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>())),
      kKeysPerDecodeBlock, &Exp2Floats};
  return &table;
}

// nullptr where this target has no BF16 dot tile.
const KernelTable* GetBf16DotKernelTable() {
  if constexpr (!kBf16DotTarget) return nullptr;
  static const KernelTable table = {
      &AttendWithBf16Dots,
      static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>())),
      kKeysPerDecodeBlock, &Exp2Floats};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sdpa {

HWY_EXPORT(GetKernelTable);
HWY_EXPORT(GetBf16DotKernelTable);

// The dispatch table of HWY_EXPORT holds one entry per Highway target (nullptr
// where not compiled); this finds a given target's entry the way Highway's own
// ChosenTarget does, so each context can run its own ISA.
const KernelTable* KernelsForHwyTarget(int64_t hwy_target, bool bf16_dot) {
  size_t index;
  if (hwy_target == HWY_SCALAR || hwy_target == HWY_EMU128) {
    index = HWY_MAX_DYNAMIC_TARGETS + 1;
  } else {
    const int64_t bits = HWY_CHOSEN_TARGET_SHIFT(hwy_target);
    if (bits == 0) return nullptr;
    index = hwy::Num0BitsBelowLS1Bit_Nonzero64(static_cast<uint64_t>(bits));
  }
  const auto fn = bf16_dot ? HWY_DISPATCH_TABLE(GetBf16DotKernelTable)[index]
                           : HWY_DISPATCH_TABLE(GetKernelTable)[index];
  return fn != nullptr ? fn() : nullptr;
}

}  // namespace sdpa
#endif  // HWY_ONCE
