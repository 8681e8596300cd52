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
#include <vector>

#include "src/elem_type.h"
#include "src/kernels/workspace.h"

// Per-target code:
#include "src/kernels/exp2-inl.h"
#include "src/kernels/online_softmax-inl.h"
#include "src/kernels/pv_tile-inl.h"
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
#elif HWY_ARCH_X86 && HWY_TARGET != HWY_AVX3 && HWY_TARGET != HWY_AVX3_DL
// 16 vector registers (SSSE3, SSE4, AVX2). Four query vectors per
// broadcast key element: SSE has no broadcast load (movss + shufps per key),
// so fewer keys per tile is +7% on SSE4 and neutral on AVX2.
constexpr int kQkQueryVecs = 4;
constexpr int kQkKeys = 3;
constexpr int kPvRows = 6;
constexpr int kPvVecs = 2;
#else
// 32 vector registers (AVX-512, NEON, SVE).
constexpr int kQkQueryVecs = 3;
constexpr int kQkKeys = 8;
constexpr int kPvRows = 6;
constexpr int kPvVecs = 4;
#endif
// Keys per K/V block. Few-row (decode) tasks stream K and V from memory:
// longer blocks keep each stream running long enough for the prefetchers.
constexpr int64_t kKeysPerBlock = 128;
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
  for (size_t r = 0; r < count; ++r) {
    const int64_t row = first + static_cast<int64_t>(r) * row_stride;
    float* HWY_RESTRICT out = dst + r * dst_stride;
    size_t c = 0;
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
#if !(HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_SSE4 || \
      HWY_TARGET == HWY_SSSE3)
        // Hardware half conversion (F16C, NEON, SVE); hwy 1.0.3's emulation
        // for older targets mishandles Inf/NaN, so those take the scalar path.
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
// finite, so one vector sum answers for a whole row.
template <class D>
bool AllFinite(D d, const float* HWY_RESTRICT data, size_t rows, size_t cols,
               size_t row_stride) {
  const size_t N = hn::Lanes(d);
  const auto zero = hn::Zero(d);
  auto acc = zero;
  float tail = 0.0f;
  for (size_t r = 0; r < rows; ++r) {
    const float* row = data + r * row_stride;
    size_t c = 0;
    for (; c + N <= cols; c += N) {
      acc = hn::MulAdd(hn::LoadU(d, row + c), zero, acc);
    }
    for (; c < cols; ++c) tail += row[c] * 0.0f;
  }
  return tail == 0.0f && hn::GetLane(hn::SumOfLanes(d, acc)) == 0.0f;
}

template <class D>
void QkForTile(D d, bool dot_form, size_t q_vecs, const float* q_tile,
               size_t rt, size_t tile_rows, size_t dim, size_t dim_padded,
               const float* k, size_t k_row_stride, size_t num_keys, float* s) {
  if (dot_form) {
    QkDotBlock(d, q_tile, tile_rows, dim_padded, k, k_row_stride, num_keys, s,
               rt);
    return;
  }
  switch (q_vecs) {
    case 1:
      QkLanesBlock<1, kQkKeys>(d, q_tile, rt, dim, k, k_row_stride, num_keys,
                               s);
      break;
    case 2:
      if constexpr (kQkQueryVecs >= 2) {
        QkLanesBlock<2, kQkKeys>(d, q_tile, rt, dim, k, k_row_stride, num_keys,
                                 s);
      }
      break;
    case 3:
      if constexpr (kQkQueryVecs >= 3) {
        QkLanesBlock<3, kQkKeys>(d, q_tile, rt, dim, k, k_row_stride, num_keys,
                                 s);
      }
      break;
    case 4:
      if constexpr (kQkQueryVecs >= 4) {
        QkLanesBlock<4, kQkKeys>(d, q_tile, rt, dim, k, k_row_stride, num_keys,
                                 s);
      }
      break;
    default:
      HWY_ASSERT(false);  // q_vecs is in [1, kQkQueryVecs <= 4]
  }
}

void Attend(const Problem& p, const Task& t) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const int64_t group = p.q_heads / p.kv_heads;
  const int64_t num_q = t.q_end - t.q_begin;
  const size_t rows = static_cast<size_t>(group * num_q);
  const size_t dim = static_cast<size_t>(p.head_dim);
  const size_t vdim = static_cast<size_t>(p.value_dim);
  const size_t dim_padded = RoundUp(dim, N);
  const size_t vdim_padded = RoundUp(vdim, N);
  const size_t vvecs = vdim_padded / N;
  const bool dot_form = UseDotForm(rows, N);
  const size_t q_vecs =
      dot_form ? 1 : std::min<size_t>(kQkQueryVecs, (rows + N - 1) / N);
  const size_t rt = q_vecs * N;  // rows per tile = lanes of one score row
  const size_t num_tiles = (rows + rt - 1) / rt;
  const size_t rows_padded = num_tiles * rt;
  const int64_t keys_per_block = dot_form ? kKeysPerDecodeBlock : kKeysPerBlock;
  const size_t bc = static_cast<size_t>(keys_per_block);
  const size_t q_tile_floats = dot_form ? rt * dim_padded : rt * dim;

  const bool k_in_place = p.k_type == ElemType::kF32 && p.k_strides[3] == 1 &&
                          (!dot_form || dim % N == 0);
  const bool v_in_place =
      p.v_type == ElemType::kF32 && p.v_strides[3] == 1 && vdim % N == 0;
  const bool has_mask = p.mask_kind != MaskKind::kNone;
  // A mask that is the same for every row of the task: one scalar per key.
  const bool mask_per_key =
      has_mask && p.mask_strides[1] == 0 && p.mask_strides[2] == 0;

  // Scratch layout.
  size_t floats = ScratchCarver::Size(num_tiles * q_tile_floats) +
                  ScratchCarver::Size(rows_padded * vdim_padded) +
                  3 * ScratchCarver::Size(rows_padded) +
                  4 * ScratchCarver::Size(rows_padded) +  // int64 first/last
                  2 * ScratchCarver::Size(rt) + ScratchCarver::Size(bc * rt) +
                  (has_mask ? ScratchCarver::Size(bc * rt) : 0) +
                  (k_in_place ? 0 : ScratchCarver::Size(bc * dim_padded)) +
                  (v_in_place ? 0 : ScratchCarver::Size(bc * vdim_padded));
  ScratchCarver carve(ThreadScratch(floats));
  float* q_pack = carve.Take(num_tiles * q_tile_floats);
  float* o_acc = carve.Take(rows_padded * vdim_padded);
  float* row_max = carve.Take(rows_padded);
  float* row_sum = carve.Take(rows_padded);
  float* alpha = carve.Take(rows_padded);
  int64_t* first = reinterpret_cast<int64_t*>(carve.Take(2 * rows_padded));
  int64_t* last = reinterpret_cast<int64_t*>(carve.Take(2 * rows_padded));
  float* first_rel = carve.Take(rt);
  float* last_rel = carve.Take(rt);
  float* s_tile = carve.Take(bc * rt);
  float* mask_tile = has_mask ? carve.Take(bc * rt) : nullptr;
  float* k_pack = k_in_place ? nullptr : carve.Take(bc * dim_padded);
  float* v_pack = v_in_place ? nullptr : carve.Take(bc * vdim_padded);

  // Row r of the task is query head kv_head * group + r / num_q at position
  // q_begin + r % num_q.
  auto head_of = [&](size_t r) {
    return t.kv_head * group + static_cast<int64_t>(r) / num_q;
  };
  auto pos_of = [&](size_t r) {
    return t.q_begin + static_cast<int64_t>(r) % num_q;
  };

  // Pack Q, pre-scaled into the log2 domain.
  const float q_scale = p.scale * kLog2e;
  std::memset(q_pack, 0, num_tiles * q_tile_floats * sizeof(float));
  for (size_t r = 0; r < rows; ++r) {
    const int64_t src = t.batch * p.q_strides[0] + head_of(r) * p.q_strides[1] +
                        pos_of(r) * p.q_strides[2];
    float* tile = q_pack + (r / rt) * q_tile_floats;
    const size_t lane = r % rt;
    for (size_t e = 0; e < dim; ++e) {
      const float x =
          LoadElem(p.q, src + static_cast<int64_t>(e) * p.q_strides[3],
                   p.q_type) *
          q_scale;
      if (dot_form) {
        tile[lane * dim_padded + e] = x;
      } else {
        tile[e * rt + lane] = x;
      }
    }
  }

  // Visible key range of every row within [kv_begin, kv_end).
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max() / 4;
  for (size_t r = 0; r < rows_padded; ++r) {
    int64_t lo = t.kv_begin;
    int64_t hi = t.kv_end - 1;
    if (r < rows) {
      const int64_t diag = pos_of(r) + p.diag_offset;
      if (p.left >= 0) lo = std::max(lo, diag - p.left);
      if (p.right >= 0) hi = std::min(hi, diag + p.right);
    }
    if (r >= rows || lo > hi) {
      lo = kNone;
      hi = -kNone;
    }
    first[r] = lo;
    last[r] = hi;
  }
  std::vector<TileRange> ranges(num_tiles);
  for (size_t tile = 0; tile < num_tiles; ++tile) {
    TileRange& range = ranges[tile];
    range = {kNone, -kNone, kNone, -kNone, true};
    // Padding rows (r >= rows) are computed but never written out: they
    // must not force masking on every block.
    for (size_t r = tile * rt; r < std::min(rows, (tile + 1) * rt); ++r) {
      range.max_first = std::max(range.max_first, first[r]);
      range.min_last = std::min(range.min_last, last[r]);
      if (first[r] > last[r]) continue;
      range.empty = false;
      range.min_first = std::min(range.min_first, first[r]);
      range.max_last = std::max(range.max_last, last[r]);
    }
  }

  const float neg_inf = -std::numeric_limits<float>::infinity();
  std::fill(row_max, row_max + rows_padded, neg_inf);
  std::fill(row_sum, row_sum + rows_padded, 0.0f);
  std::memset(o_acc, 0, rows_padded * vdim_padded * sizeof(float));

  // Element offsets of this KV head; its rows are used in place only when
  // they are f32 with unit stride (then the pointers below are valid).
  const int64_t k_head = t.batch * p.k_strides[0] + t.kv_head * p.k_strides[1];
  const int64_t v_head = t.batch * p.v_strides[0] + t.kv_head * p.v_strides[1];
  const float* k_f32 = static_cast<const float*>(p.k) + k_head;
  const float* v_f32 = static_cast<const float*>(p.v) + v_head;

  for (int64_t j0 = t.kv_begin; j0 < t.kv_end; j0 += keys_per_block) {
    const int64_t j1 = std::min(t.kv_end, j0 + keys_per_block);
    bool k_packed = false, v_packed = false;
    int v_finite = -1;  // unknown until a masked tile needs to know
    for (size_t tile = 0; tile < num_tiles; ++tile) {
      const TileRange& range = ranges[tile];
      if (range.empty) continue;
      const int64_t a = std::max(j0, range.min_first);
      const int64_t b = std::min(j1, range.max_last + 1);
      if (a >= b) continue;  // the whole tile is blind to this block
      const size_t num_keys = static_cast<size_t>(b - a);
      const bool range_masked =
          !(range.max_first <= a && range.min_last >= b - 1);

      // K rows [a, b).
      const float* k_rows;
      size_t k_row_stride;
      if (k_in_place) {
        k_rows = k_f32 + a * p.k_strides[2];
        k_row_stride = static_cast<size_t>(p.k_strides[2]);
      } else {
        if (!k_packed) {
          PackRows(d, p.k, p.k_type, k_head + j0 * p.k_strides[2],
                   p.k_strides[2], p.k_strides[3], static_cast<size_t>(j1 - j0),
                   dim, k_pack, dot_form ? dim_padded : dim);
          k_packed = true;
        }
        k_row_stride = dot_form ? dim_padded : dim;
        k_rows = k_pack + static_cast<size_t>(a - j0) * k_row_stride;
      }
      const float* q_tile = q_pack + tile * q_tile_floats;
      const size_t tile_rows = std::min(rt, rows - tile * rt);
      QkForTile(d, dot_form, q_vecs, q_tile, rt, tile_rows, dim, dim_padded,
                k_rows, k_row_stride, num_keys, s_tile);

      TileMasks masks;
      if (range_masked) {
        for (size_t lane = 0; lane < rt; ++lane) {
          const size_t r = tile * rt + lane;
          const int64_t lo = std::max<int64_t>(first[r] - a, -1);
          const int64_t hi = std::min<int64_t>(last[r] - a, bc);
          first_rel[lane] = static_cast<float>(std::min<int64_t>(lo, bc + 1));
          last_rel[lane] = static_cast<float>(std::max<int64_t>(hi, -2));
        }
        masks.first = first_rel;
        masks.last = last_rel;
      }
      if (has_mask) {
        const bool additive = p.mask_kind == MaskKind::kAdditiveF32;
        auto mask_value = [&](int64_t offset) {
          if (additive) {
            const float x = static_cast<const float*>(p.mask)[offset];
            return x == neg_inf ? neg_inf : x * kLog2e;
          }
          return static_cast<const uint8_t*>(p.mask)[offset] ? 0.0f : neg_inf;
        };
        if (mask_per_key) {
          const int64_t base =
              t.batch * p.mask_strides[0] + a * p.mask_strides[3];
          for (size_t kk = 0; kk < num_keys; ++kk) {
            mask_tile[kk] =
                mask_value(base + static_cast<int64_t>(kk) * p.mask_strides[3]);
          }
          masks.mask_row = mask_tile;
        } else {
          for (size_t lane = 0; lane < rt; ++lane) {
            const size_t r = tile * rt + lane;
            if (r >= rows) {
              for (size_t kk = 0; kk < num_keys; ++kk) {
                mask_tile[kk * rt + lane] = 0.0f;
              }
              continue;
            }
            const int64_t base =
                t.batch * p.mask_strides[0] + head_of(r) * p.mask_strides[1] +
                pos_of(r) * p.mask_strides[2] + a * p.mask_strides[3];
            for (size_t kk = 0; kk < num_keys; ++kk) {
              mask_tile[kk * rt + lane] = mask_value(
                  base + static_cast<int64_t>(kk) * p.mask_strides[3]);
            }
          }
          masks.mask_tile = mask_tile;
        }
      }
      const size_t row0 = tile * rt;
      OnlineSoftmaxTile(d, s_tile, rt, num_keys, masks, row_max + row0,
                        row_sum + row0, alpha + row0);

      // V rows [a, b).
      const float* v_rows;
      size_t v_row_stride;
      if (v_in_place) {
        v_rows = v_f32 + a * p.v_strides[2];
        v_row_stride = static_cast<size_t>(p.v_strides[2]);
      } else {
        if (!v_packed) {
          PackRows(d, p.v, p.v_type, v_head + j0 * p.v_strides[2],
                   p.v_strides[2], p.v_strides[3], static_cast<size_t>(j1 - j0),
                   vdim, v_pack, vdim_padded);
          v_packed = true;
        }
        v_row_stride = vdim_padded;
        v_rows = v_pack + static_cast<size_t>(a - j0) * v_row_stride;
      }
      const bool masked = range_masked || has_mask;
      if (masked && v_finite < 0) {
        v_finite =
            AllFinite(d, v_rows - static_cast<size_t>(a - j0) * v_row_stride,
                      static_cast<size_t>(j1 - j0), vdim, v_row_stride)
                ? 1
                : 0;
      }
      float* o_tile = o_acc + row0 * vdim_padded;
      if (masked && v_finite == 0) {
        PvBlock<kPvRows, kPvVecs, true>(d, s_tile, rt, tile_rows, num_keys,
                                        v_rows, v_row_stride, vvecs,
                                        alpha + row0, o_tile, vdim_padded);
      } else {
        PvBlock<kPvRows, kPvVecs, false>(d, s_tile, rt, tile_rows, num_keys,
                                         v_rows, v_row_stride, vvecs,
                                         alpha + row0, o_tile, vdim_padded);
      }
    }
  }

  // Normalise and write out.
  for (size_t r = 0; r < rows; ++r) {
    const int64_t h = head_of(r);
    const int64_t i = pos_of(r);
    const int64_t dst = t.batch * p.out_strides[0] + h * p.out_strides[1] +
                        i * p.out_strides[2];
    const float* acc = o_acc + r * vdim_padded;
    const float sum = row_sum[r];
    // No visible key (or every weight underflowed): defined as 0. NaN in
    // `sum` stays NaN through the reciprocal.
    const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    for (size_t c = 0; c < vdim; ++c) {
      StoreElem(p.out, dst + static_cast<int64_t>(c) * p.out_strides[3],
                p.out_type, sum == 0.0f ? 0.0f : acc[c] * inv);
    }
    if (p.lse != nullptr) {
      float* lse = p.lse + t.batch * p.lse_strides[0] + h * p.lse_strides[1] +
                   i * p.lse_strides[2];
      *lse = sum == 0.0f
                 ? neg_inf
                 : static_cast<float>((static_cast<double>(row_max[r]) +
                                       std::log2(static_cast<double>(sum))) *
                                      kLn2);
    }
  }
}

const KernelTable* GetKernelTable() {
  static const KernelTable table = {
      &Attend, static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>())),
      kKeysPerDecodeBlock};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace sdpa
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sdpa {

HWY_EXPORT(GetKernelTable);

// The dispatch table of HWY_EXPORT holds one entry per Highway target (nullptr
// where not compiled); this finds a given target's entry the way Highway's own
// ChosenTarget does, so each context can run its own ISA.
const KernelTable* KernelsForHwyTarget(int64_t hwy_target) {
  size_t index;
  if (hwy_target == HWY_SCALAR || hwy_target == HWY_EMU128) {
    index = HWY_MAX_DYNAMIC_TARGETS + 1;
  } else {
    const int64_t bits = HWY_CHOSEN_TARGET_SHIFT(hwy_target);
    if (bits == 0) return nullptr;
    index = hwy::Num0BitsBelowLS1Bit_Nonzero64(static_cast<uint64_t>(bits));
  }
  const auto fn = HWY_DISPATCH_TABLE(GetKernelTable)[index];
  return fn != nullptr ? fn() : nullptr;
}

}  // namespace sdpa
#endif  // HWY_ONCE
