#!/usr/bin/env python3
"""Writes the seed corpus of the attention fuzzer into fuzz/corpus/.

Each seed is one call described in words below and encoded in the byte
format that Decode() in fuzz/attention_fuzzer.cc reads: bytes front to
back, zeros past the end. Valid calls of many shapes and layouts
give the fuzzer a foothold past validation; the invalid ones point it at each
refusal. Run it after changing the format:

    python3 fuzz/make_corpus.py    # rewrites its seeds in fuzz/corpus/

Other files there (regress_*, the failing inputs of fixed findings) are
kept.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

Q, K, V, MASK, OUT, LSE = range(6)

# Permutation indices of the decoder's layout byte (innermost first).
BHSD, BSHD = 0, 1


class Tensor:
    """Per-tensor bytes: see DecodeTensor."""

    def __init__(self, dtype_mode=0, dtype_byte=None, shape_override=None,
                 perm=BHSD, padding=0, reverse=None, zeros=None,
                 raw_stride=None, small_stride=None, share=None,
                 misalign=None, null_data=False, fake_base=0):
        self.dtype_mode = dtype_mode  # 0 F32, 2 other plausible, 3 raw table
        self.dtype_byte = dtype_byte
        self.shape_override = shape_override  # (dim, value byte[, u64])
        self.perm = perm
        self.padding = padding
        self.reverse = reverse
        self.zeros = zeros
        self.raw_stride = raw_stride  # (dim, value byte[, u64])
        self.small_stride = small_stride  # (dim, int8)
        self.share = share  # (target buffer byte, u16 offset)
        self.misalign = misalign
        self.null_data = null_data
        self.fake_base = fake_base

    def encode(self):
        placement = 0
        if self.share is not None:
            placement = 1
        elif self.misalign is not None or self.null_data:
            placement = 2
        flags = (self.dtype_mode | (4 if self.shape_override else 0)
                 | placement << 3 | self.fake_base << 5
                 | (0x80 if self.null_data else 0))
        out = bytearray([flags])
        if self.dtype_mode in (2, 3):
            out.append(self.dtype_byte or 0)
        if self.shape_override:
            out += override_bytes(*self.shape_override)
        layout = (self.perm | (8 if self.reverse is not None else 0)
                  | (16 if self.zeros is not None else 0)
                  | (32 if self.raw_stride else 0)
                  | (64 if self.small_stride else 0))
        out += bytes([layout, self.padding])
        if self.reverse is not None:
            out.append(self.reverse)
        if self.zeros is not None:
            out.append(self.zeros)
        if self.raw_stride:
            out += override_bytes(*self.raw_stride)
        if self.small_stride:
            dim, value = self.small_stride
            out += bytes([dim, value & 0xFF])
        if placement == 1:
            out += bytes([self.share[0]]) + struct.pack("<H", self.share[1])
        elif placement == 2:
            out.append(self.misalign or 0)
        return bytes(out)


def override_bytes(dim, value_byte, raw=None):
    out = bytes([dim & 3, value_byte])
    if value_byte == 255:
        out += struct.pack("<q", raw)
    return out


# Indices into the decoder's InterestingI64 table.
I64 = {0: 0, -1: 1, 1: 2, 2: 3, "max": 6, "min": 7, 2**31: 10, 2**62: 13,
       2**62 + 1: 14, -(2**62): 16, 2**40: 18, "max/2": 20, 65536: 24,
       "raw": 255}


def seed(*, b=1, hkv=1, group=1, tq=4, tk=4, d=8, dv=8, mask=False, lse=False,
         mask_bcast=0, context=("cached", 0, 0), tensors=None, null=(),
         args_null=False, struct_size=None, arg_flags=None, scale=0,
         scale_bits=None,
         causal=0, wl=0, wr=0, seed_value=1, classes=(0, 0, 0), drop=0,
         specials=()):
    """One call. Sizes are decoder bytes: values < 160 mean 1 + x % 40."""
    flags = ((0x81 if args_null else 0) | (2 if Q in null else 0)
             | (4 if K in null else 0) | (8 if V in null else 0)
             | (16 if OUT in null else 0) | (32 if mask else 0)
             | (64 if lse else 0))
    out = bytearray([flags, (1 if struct_size is not None else 0)
                     | (2 if arg_flags is not None else 0)])
    if struct_size is not None:
        out.append(struct_size)
    if arg_flags is not None:  # an index into the fuzzer's kArgFlags
        out.append(arg_flags)
    kind = context[0]
    if kind == "default":
        out.append(1)
    elif kind == "cached":
        out += bytes([0, context[1], context[2]])
    else:  # ("fresh", flags, struct index, threads index, isa byte[, u64])
        _, fflags, fstruct, fthreads, fisa = context[:5]
        out += bytes([3, fflags])
        if fflags & 4:
            out.append(fstruct)
        out += bytes([fthreads, fisa])
        if fisa >= 192:  # a raw 64-bit ISA value follows
            out += struct.pack("<Q", context[5])
    out += bytes([b - 1, hkv - 1, group - 1, tq, tk, d, dv, mask_bcast])
    tensors = tensors or {}
    present = [Q not in null, K not in null, V not in null, mask,
               OUT not in null, lse]
    for role in range(6):
        if present[role]:
            out += tensors.get(role, Tensor()).encode()
    if scale_bits is not None:
        out += bytes([255]) + struct.pack("<I", scale_bits)
    else:
        out.append(scale)
    out.append(causal)
    out += bytes([wl, wr])
    out += struct.pack("<Q", seed_value)
    out += bytes(classes) + bytes([drop, len(specials)])
    for role, index, special in specials:
        out += bytes([role]) + struct.pack("<I", index) + bytes([special])
    return bytes(out)


def size(n):
    """Decoder byte for a size 1..40."""
    assert 1 <= n <= 40
    return n - 1


# Scale bytes: < 128 -> 0 (1/sqrt(D)) when x % 3 == 0 else 0.125; >= 128
# index the table kScales (128 + i).
SCALE = {"default": 0, "0.125": 1, "-0": 128 + 1, "1": 128 + 4,
         "-1": 128 + 5, "1e30": 128 + 8, "1e-30": 128 + 9, "1e-45": 128 + 10,
         "3.4e38": 128 + 11, "nan": 128 + 12, "inf": 128 + 13}
# Causal bytes: x % 3 below 240; 240.. index raw values (3, -1, ...).
CAUSAL = {"none": 0, "top_left": 1, "bottom_right": 2, "raw3": 240}
# Window bytes: < 96 unbounded (-1); 96..159 -> x % 8.
WIN = {"none": 0, 0: 96, 1: 97, 2: 98, 3: 99, "max": 203, "min": 204}
# Special value kinds (SpecialValue): 0 NaN, 1 +inf, 2 -inf, 3 -0, 4 1e-40.
NAN, PINF, NINF, NEG0, DENORMAL = 0, 1, 2, 3, 4
# Value classes: 0 grid |x| <= 1, 1 grid |x| <= 4, 2 zeros, 3 -0.0,
# 4 ones, 5 small ints, 6 fine grid, 7 large (ill-conditioned).

SEEDS = {
    # Valid calls.
    "valid_tiny": seed(),
    "valid_gqa_lse": seed(b=2, hkv=2, group=3, tq=size(5), tk=size(7),
                          d=size(16), dv=size(12), lse=True),
    "valid_decode_split_kv": seed(hkv=1, group=4, tq=size(1), tk=174,
                                  d=size(32), dv=size(32), lse=True,
                                  context=("cached", 0, 2)),  # Tk 513, 3 thr
    "valid_long_keys": seed(tq=size(20), tk=175, d=size(24), dv=size(8),
                            lse=True),  # Tk 640
    "valid_causal_top_left": seed(tq=size(33), tk=size(17), d=size(8),
                                  causal=CAUSAL["top_left"], lse=True),
    "valid_causal_bottom_right": seed(tq=size(40), tk=size(9), d=size(8),
                                      causal=CAUSAL["bottom_right"],
                                      lse=True),
    "valid_window": seed(tq=size(30), tk=size(30), wl=WIN[2], wr=WIN[1],
                         lse=True),
    "valid_window_causal": seed(tq=size(30), tk=size(35), wl=WIN[3],
                                causal=CAUSAL["bottom_right"]),
    "valid_mask_f32": seed(b=2, group=2, tq=size(6), tk=size(9), mask=True,
                           drop=40, lse=True),
    "valid_mask_bool_broadcast": seed(b=2, group=2, tq=size(6), tk=size(9),
                                      mask=True, mask_bcast=1 | 4 | 8,
                                      drop=80),
    "valid_mask_all_dropped": seed(tq=size(3), tk=size(5), mask=True,
                                   drop=255, lse=True),
    "valid_bshd": seed(b=2, hkv=2, group=2, tq=size(5), tk=size(6),
                       tensors={r: Tensor(perm=BSHD) for r in (Q, K, V, OUT)}),
    "valid_padded_reversed": seed(tq=size(7), tk=size(7), lse=True, tensors={
        Q: Tensor(padding=0b11111000), K: Tensor(reverse=0b0100),
        V: Tensor(padding=0b00001011), OUT: Tensor(padding=0b01101000)}),
    "valid_element_strided": seed(d=size(9), dv=size(5), tensors={
        K: Tensor(padding=0b101), V: Tensor(padding=0b111)}),
    "valid_broadcast_kv": seed(b=3, tq=size(4), tk=size(6), tensors={
        K: Tensor(zeros=0b0001), V: Tensor(zeros=0b0001)}),
    "valid_self_attention_shared": seed(tq=size(8), tk=size(8), tensors={
        K: Tensor(share=(0, 0)), V: Tensor(share=(0, 0))}),
    "valid_default_context": seed(context=("default",), tq=size(9)),
    "valid_each_isa_1": seed(context=("cached", 1, 0), tq=size(13),
                             tk=size(21), d=size(17), dv=size(3), lse=True),
    "valid_each_isa_2": seed(context=("cached", 2, 1), tq=size(13),
                             tk=size(21), d=size(17), dv=size(3), lse=True),
    "valid_each_isa_3": seed(context=("cached", 3, 2), tq=size(13),
                             tk=size(21), d=size(17), dv=size(3), lse=True),
    "valid_each_isa_4": seed(context=("cached", 4, 0), tq=size(13),
                             tk=size(21), d=size(17), dv=size(3), lse=True),
    "valid_fresh_context": seed(context=("fresh", 0, 0, 2, 0)),
    # Sizes past 40 are table entries: 193 -> 33, 174 -> 513, 198 -> 65,
    # 190 -> 17.
    "valid_big_dims": seed(tq=193, tk=174, d=198, dv=190, lse=True),
    # Numerics.
    "num_nan_in_q": seed(tq=size(5), tk=size(6), lse=True,
                         specials=[(Q, 9, NAN)]),
    "num_inf_in_v": seed(tq=size(5), tk=size(6), specials=[(V, 3, PINF)]),
    "num_pinf_in_mask": seed(tq=size(3), tk=size(4), mask=True, lse=True,
                             specials=[(MASK, 2, PINF)]),
    "num_nan_in_mask": seed(tq=size(3), tk=size(4), mask=True, lse=True,
                            specials=[(MASK, 5, NAN)]),
    "num_scale_1e30": seed(tq=size(4), tk=size(6), scale=SCALE["1e30"],
                           lse=True),
    "num_scale_1e-30": seed(tq=size(4), tk=size(6), scale=SCALE["1e-30"],
                            lse=True),
    "num_all_zero": seed(tq=size(3), tk=size(5), classes=(2, 2, 1), lse=True),
    "num_negative_zero": seed(tq=size(3), tk=size(5), classes=(3, 3, 3)),
    "num_d1_tk1_tq1": seed(tq=size(1), tk=size(1), d=size(1), dv=size(1),
                           lse=True),
    "num_large_scores": seed(tq=size(6), tk=size(9), classes=(7, 7, 0),
                             lse=True),
    # Refusals.
    "bad_args_null": seed(args_null=True),
    "bad_struct_size_zero": seed(struct_size=0),
    "bad_struct_size_short": seed(struct_size=3),
    "ok_struct_size_longer": seed(struct_size=6),
    # struct_size of version 0.1: flags, past its end, are not read.
    "ok_struct_size_v01_flags_unread": seed(struct_size=8, arg_flags=1),
    "bad_struct_size_v01_plus_4": seed(struct_size=9),
    "bad_flags_unknown_bit": seed(arg_flags=1),
    # BF16 Q/K/V, 20 rows: prefill tiles, P·V on BF16 dot products on
    # AVX3_ZEN4.
    "ok_bf16_weights": seed(
        tq=size(20), tk=size(33), d=size(16), dv=size(24), arg_flags=0,
        lse=True, tensors={role: Tensor(dtype_mode=2, dtype_byte=1)
                           for role in (Q, K, V)}),
    "bad_q_null": seed(null=(Q,)),
    "bad_out_null": seed(null=(OUT,)),
    "bad_data_null": seed(tensors={V: Tensor(null_data=True)}),
    "bad_misaligned": seed(tensors={K: Tensor(misalign=1)}),
    "bad_shape_zero": seed(tensors={Q: Tensor(shape_override=(2, I64[0]))}),
    "bad_shape_negative": seed(tensors={
        K: Tensor(shape_override=(1, I64[-1]))}),
    "bad_shape_huge": seed(tensors={
        Q: Tensor(shape_override=(2, I64[2**62 + 1]))}),
    "bad_stride_overflow": seed(tensors={
        V: Tensor(raw_stride=(2, I64["max/2"]))}),
    "bad_stride_min": seed(tensors={Q: Tensor(raw_stride=(3, I64["min"]))}),
    "bad_out_broadcast": seed(tq=size(4), tensors={OUT: Tensor(zeros=0b0100)}),
    "bad_out_overlaps_q": seed(tensors={OUT: Tensor(share=(0, 0))}),
    "bad_lse_overlaps_out": seed(lse=True, tensors={LSE: Tensor(share=(3, 0))}),
    "bad_dtype_raw": seed(tensors={Q: Tensor(dtype_mode=3, dtype_byte=0)}),
    "bad_dtype_bf16": seed(tensors={V: Tensor(dtype_mode=2, dtype_byte=1)}),
    "bad_mask_shape": seed(mask=True, tensors={
        MASK: Tensor(shape_override=(3, I64[2]))}),
    "bad_scale_nan": seed(scale=SCALE["nan"]),
    "bad_scale_inf": seed(scale=SCALE["inf"]),
    "bad_causal_3": seed(causal=CAUSAL["raw3"]),
    "ok_window_extremes": seed(tq=size(5), tk=size(7), wl=WIN["max"],
                               wr=WIN["min"]),
    "bad_fresh_threads_negative": seed(context=("fresh", 0, 0, 11, 0)),
    "bad_fresh_threads_huge": seed(context=("fresh", 0, 0, 14, 0)),
    "bad_fresh_isa_two_bits": seed(context=("fresh", 0, 0, 1, 200, 0b11000)),
    "bad_fresh_isa_unknown_bit": seed(context=("fresh", 0, 0, 1, 128 + 9)),
    "bad_fresh_struct_size": seed(context=("fresh", 4, 1, 1, 0)),
    "bad_fresh_out_null": seed(context=("fresh", 2, 0, 1, 0)),
}


def main():
    corpus = os.path.join(HERE, "corpus")
    os.makedirs(corpus, exist_ok=True)
    # Inputs added by hand (regress_*: the failing inputs of fixed findings)
    # stay; the seeds written here are replaced.
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {corpus}")


if __name__ == "__main__":
    main()
