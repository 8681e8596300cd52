"""float16 (NumPy and torch) and bfloat16 (torch) for q, k, v and out, in any
mix with float32, against the float64 reference.

The reference reads the same half values the library reads (the inputs are
rounded to their dtype first, then widened exactly to float64), so what is
left is the library's float32 arithmetic plus one rounding of the output.
Tolerance, per element:

    |out - ref| <= 1e-5 * max|V| + u * |ref|

with u the output's unit roundoff: 2^-24 for float32, 2^-11 for float16 and
2^-8 for bfloat16 out (1e-5 * max|V| is the float32 arithmetic's share, as
in reference.py, against max|V| >= max|out|). lse stays float32, checked as
in reference.py. torch tests skip without torch.
"""

import itertools
import tracemalloc

import numpy as np
import pytest

import sdpa
from reference import LSE_RTOL, attention_reference

INVALID, UNSUPPORTED = 1, 2
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def as_float64(x):
    """The exact values of a NumPy array or torch tensor, as float64."""
    if hasattr(x, "detach"):
        return x.detach().double().numpy()
    return np.asarray(x, dtype=np.float64)


def dtype_name(x):
    return str(x.dtype).replace("torch.", "")


def assert_within_tolerance(out, q, k, v, lse=None, **options):
    """out (and lse) against the reference of the half values q, k, v hold,
    with the tolerance stated at the top for out's dtype."""
    q64, k64, v64 = as_float64(q), as_float64(k), as_float64(v)
    ref_out, ref_lse = attention_reference(q64, k64, v64, **options)
    out64 = as_float64(out)
    assert out64.shape == ref_out.shape, (out64.shape, ref_out.shape)
    assert np.isfinite(out64).all(), "non-finite output"
    u = UNIT_ROUNDOFF[dtype_name(out)]
    bound = 1e-5 * np.abs(v64).max() + u * np.abs(ref_out)
    error = np.abs(out64 - ref_out)
    worst = np.unravel_index(np.argmax(error - bound), error.shape)
    assert (error <= bound).all(), (
        "%s out: |out - reference| = %.3g at %s exceeds 1e-5 * max|V| + "
        "%.3g * |reference| = %.3g"
        % (dtype_name(out), error[worst], worst, u, bound[worst])
    )
    if lse is not None:
        lse64 = as_float64(lse)
        assert dtype_name(lse) == "float32"
        assert lse64.shape == ref_lse.shape
        lse_error = np.abs(lse64 - ref_lse)
        assert (lse_error <= LSE_RTOL * np.maximum(1.0, np.abs(ref_lse))).all(), (
            "lse differs by up to %.3g" % lse_error.max()
        )


def mix_id(mix):
    return "q=%s-k=%s-v=%s-out=%s" % mix


# GQA, Dv != Dk, odd lengths, a long enough key range that float16 inputs
# and outputs really differ from float32 ones.
B, HQ, HKV, TQ, TK, DK, DV = 2, 4, 2, 13, 37, 24, 16


def numpy_inputs(rng, q_dtype, k_dtype, v_dtype):
    def randn(dtype, *shape):
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype)

    return (randn(q_dtype, B, HQ, TQ, DK), randn(k_dtype, B, HKV, TK, DK),
            randn(v_dtype, B, HKV, TK, DV))


# NumPy: float32 and float16, every mix, out None (q's dtype) or explicit.

NUMPY_MIXES = [
    (q, k, v, out)
    for q, k, v in itertools.product(["float32", "float16"], repeat=3)
    for out in [None, "float32", "float16"]
]


@pytest.mark.parametrize("mix", NUMPY_MIXES, ids=mix_id)
def test_numpy_mix_matches_the_reference(rng, mix):
    q_dtype, k_dtype, v_dtype, out_dtype = mix
    q, k, v = numpy_inputs(rng, q_dtype, k_dtype, v_dtype)
    options = dict(causal="bottom_right", window=(20, None))
    out, lse = sdpa.attention(q, k, v, return_lse=True, out_dtype=out_dtype, **options)
    assert isinstance(out, np.ndarray) and isinstance(lse, np.ndarray)
    assert out.dtype == np.dtype(out_dtype or q_dtype)
    assert_within_tolerance(out, q, k, v, lse, **options)


@pytest.mark.parametrize("spelling", [np.float16, np.dtype("float16"), "float16", "f2", "half"],
                         ids=str)
def test_numpy_out_dtype_spellings(spelling):
    x = np.ones((1, 1, 2, 4), np.float32)
    out = sdpa.attention(x, x, x, out_dtype=spelling)
    assert out.dtype == np.float16 and (out == 1).all()


def test_half_output_is_the_float32_output_rounded_once(rng):
    # "Arithmetic is f32, a half output is rounded to nearest even once":
    # so bit for bit NumPy's own round-to-nearest-even of the float32 output
    # (one thread, many query rows: no split of the key range).
    q, k, v = numpy_inputs(rng, "float16", "float32", "float16")
    full = sdpa.attention(q, k, v, out_dtype=np.float32, threads=1)
    half = sdpa.attention(q, k, v, out_dtype=np.float16, threads=1)
    np.testing.assert_array_equal(half, full.astype(np.float16))
    assert not np.array_equal(half.astype(np.float32), full)  # a rounding happened


def test_float16_with_masks(rng):
    # Masks stay float32 or bool whatever q, k and v are.
    q, k, v = numpy_inputs(rng, "float16", "float16", "float16")
    keep = rng.random((TQ, TK)) < 0.7
    keep[:, 0] = True
    additive = rng.standard_normal((1, HQ, 1, TK), dtype=np.float32)
    for mask in (keep, additive):
        out, lse = sdpa.attention(q, k, v, mask=mask, return_lse=True)
        assert out.dtype == np.float16
        assert_within_tolerance(out, q, k, v, lse, mask=mask)


# Strided float16 views: itemsize 2, passed through without a copy.


def test_float16_strided_views(rng):
    # A fused [B, T, 3, H, D] float16 buffer viewed as BHSD q, k, v; a
    # reversed q, a strided head dim and a stride-0 batch broadcast.
    qkv = rng.standard_normal((2, 23, 3, 4, 32), dtype=np.float32).astype(np.float16)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    assert np.shares_memory(q, qkv) and q.strides[-2] == 3 * 4 * 32 * 2
    out, lse = sdpa.attention(q, k, v, causal="top_left", return_lse=True)
    assert_within_tolerance(out, q, k, v, lse, causal="top_left")

    q = q[:, ::-1, ::-1, ::2]
    k = np.broadcast_to(k[:1, :, :, ::2], k[:, :, :, ::2].shape)
    assert q.strides[1] < 0 and k.strides[0] == 0
    out = sdpa.attention(q, k, v, out_dtype=np.float32)
    assert out.dtype == np.float32
    assert_within_tolerance(out, q, k, v)


def test_float16_inputs_are_not_copied(rng):
    # As test_attention.test_strided_inputs_are_not_copied, for float16: a
    # widened or contiguous copy of k would cost at least k.nbytes.
    base = rng.standard_normal((1, 2048, 3, 8, 64), dtype=np.float32).astype(np.float16)
    q, k, v = (base[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    q = q[:, :, :64]
    tracemalloc.start()
    try:
        sdpa.attention(q, k, v, return_lse=True)  # warm caches
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        out, lse = sdpa.attention(q, k, v, return_lse=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    allocated = peak - before
    assert allocated < out.nbytes + lse.nbytes + 64 * 1024, allocated
    assert k.nbytes > 4 * (out.nbytes + lse.nbytes + 64 * 1024)


def raises(status, pattern, *args, **kwargs):
    with pytest.raises(sdpa.SdpaError) as info:
        sdpa.attention(*args, **kwargs)
    assert info.value.status == status, info.value
    assert info.match(pattern)
    return info.value


def test_float16_stride_and_alignment_are_checked_against_itemsize_2():
    buffer = np.zeros(64, np.uint8)
    f16 = np.ones((1, 1, 3, 4), np.float16)
    q = np.ndarray((1, 1, 2, 4), np.float16, buffer, 0, (32, 32, 9, 2))
    raises(INVALID, r"q has a stride of 9 bytes on axis 2, not a multiple of its itemsize 2",
           q, f16, f16)
    k = np.ndarray((1, 1, 3, 4), np.float16, buffer, 1, (32, 32, 8, 2))
    raises(INVALID, r"k starts at address 0x[0-9a-f]+, not aligned to its itemsize 2",
           f16, k, f16)


# Unsupported dtypes: refused before the call, naming the argument.


@pytest.mark.parametrize("dtype", ["float64", "int32"])
@pytest.mark.parametrize("argument", ["q", "k", "v"])
def test_numpy_unsupported_dtype_names_the_argument(argument, dtype):
    arrays = {name: np.ones((1, 1, 3, 4), np.float16) for name in "qkv"}
    arrays[argument] = arrays[argument].astype(dtype)
    raises(UNSUPPORTED,
           r"^unsupported: %s has dtype %s; only float32 or float16 is supported for a "
           r"NumPy array" % (argument, dtype),
           arrays["q"], arrays["k"], arrays["v"])


@pytest.mark.parametrize("dtype", [np.float64, np.int32, bool])
def test_numpy_unsupported_out_dtype(dtype):
    x = np.ones((1, 1, 2, 4), np.float32)
    raises(UNSUPPORTED, r"out_dtype is %s; .* only float32 or float16" % np.dtype(dtype).name,
           x, x, x, out_dtype=dtype)


def test_numpy_has_no_bfloat16_out():
    x = np.ones((1, 1, 2, 4), np.float32)
    raises(UNSUPPORTED, r"out_dtype is bfloat16.*NumPy has no bfloat16", x, x, x,
           out_dtype="bfloat16")


@pytest.mark.parametrize("value", ["banana", 3, object()], ids=repr)
def test_out_dtype_that_is_no_dtype(value):
    x = np.ones((1, 1, 2, 4), np.float32)
    raises(INVALID, r"out_dtype must be None or a dtype", x, x, x, out_dtype=value)


def test_float16_mask_is_unsupported():
    x = np.ones((1, 1, 2, 4), np.float16)
    raises(UNSUPPORTED, r"mask has dtype float16; only float32 or bool", x, x, x,
           mask=np.zeros((2, 2), np.float16))


# torch: float32, float16 and bfloat16, every mix.

TORCH_DTYPES = ["float32", "float16", "bfloat16"]
TORCH_MIXES = [
    (q, k, v, out)
    for q, k, v in itertools.product(TORCH_DTYPES, repeat=3)
    for out in [None] + TORCH_DTYPES
]


def torch_inputs(torch, rng, q_dtype, k_dtype, v_dtype):
    q, k, v = numpy_inputs(rng, "float32", "float32", "float32")
    return (torch.from_numpy(q).to(getattr(torch, q_dtype)),
            torch.from_numpy(k).to(getattr(torch, k_dtype)),
            torch.from_numpy(v).to(getattr(torch, v_dtype)))


@pytest.mark.parametrize("mix", TORCH_MIXES, ids=mix_id)
def test_torch_mix_matches_the_reference(torch, rng, mix):
    q_dtype, k_dtype, v_dtype, out_dtype = mix
    q, k, v = torch_inputs(torch, rng, q_dtype, k_dtype, v_dtype)
    options = dict(causal="top_left", window=(None, 3))
    out, lse = sdpa.attention(q, k, v, return_lse=True, **options,
                              out_dtype=out_dtype and getattr(torch, out_dtype))
    assert isinstance(out, torch.Tensor) and isinstance(lse, torch.Tensor)
    assert out.dtype == getattr(torch, out_dtype or q_dtype)
    assert_within_tolerance(out, q, k, v, lse, **options)


def test_torch_bfloat16_output_is_the_float32_output_rounded_once(torch, rng):
    q, k, v = torch_inputs(torch, rng, "float32", "bfloat16", "bfloat16")
    full = sdpa.attention(q, k, v, threads=1)
    half = sdpa.attention(q, k, v, out_dtype=torch.bfloat16, threads=1)
    assert full.dtype == torch.float32 and half.dtype == torch.bfloat16
    assert torch.equal(half, full.to(torch.bfloat16))  # torch rounds to nearest even
    f16 = sdpa.attention(q, k, v, out_dtype="float16", threads=1)
    assert torch.equal(f16, full.to(torch.float16))


def test_torch_bfloat16_strided_views_without_copies(torch, rng):
    # A fused bfloat16 QKV buffer in BSHD memory; a 3-D expanded k.
    qkv = torch.from_numpy(rng.standard_normal((2, 21, 3, 4, 16), dtype=np.float32))
    qkv = qkv.to(torch.bfloat16)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    assert not q.is_contiguous() and k.data_ptr() == qkv.data_ptr() + 4 * 16 * 2
    out, lse = sdpa.attention(q, k, v, causal="bottom_right", return_lse=True)
    assert out.dtype == torch.bfloat16
    assert_within_tolerance(out, q, k, v, lse, causal="bottom_right")

    q3 = q[0].float()
    k3 = k[0, :1].expand(4, 21, 16)  # stride 0 over heads
    v3 = v[1].half()
    out = sdpa.attention(q3, k3, v3, window=2)
    assert out.shape == (4, 21, 16) and out.dtype == torch.float32
    assert_within_tolerance(out[None], q3[None], k3[None], v3[None], window=2)


@pytest.mark.parametrize("isa", sdpa.available_isas())
def test_torch_bf16_weights_stay_within_their_bound(torch, rng, isa):
    # bf16_weights=True (SDPA_FLAG_BF16_WEIGHTS): with bfloat16 v, P·v may
    # run on BF16 dot products (AVX3_ZEN4), each weight rounded to bfloat16;
    # sdpa.h bounds the change by 2^-8 * max|v|. 45 query rows a KV head
    # and 301 keys: the prefill tiles, several key blocks, an odd key count.
    q = torch.from_numpy(rng.standard_normal((1, 6, 15, 40), dtype=np.float32))
    k = torch.from_numpy(rng.standard_normal((1, 2, 301, 40), dtype=np.float32))
    v = torch.from_numpy(rng.standard_normal((1, 2, 301, 24), dtype=np.float32))
    q, k, v = (x.to(torch.bfloat16) for x in (q, k, v))
    options = dict(causal="bottom_right", window=(97, None))
    out, lse = sdpa.attention(q, k, v, return_lse=True, isa=isa,
                              out_dtype=torch.float32, bf16_weights=True,
                              **options)
    ref_out, ref_lse = attention_reference(as_float64(q), as_float64(k),
                                           as_float64(v), **options)
    v_max = np.abs(as_float64(v)).max()
    error = np.abs(as_float64(out) - ref_out).max()
    assert error <= (2.0**-8 + 1e-5) * v_max, (isa, error, v_max)
    assert np.abs(as_float64(lse) - ref_lse).max() <= LSE_RTOL * np.maximum(
        1.0, np.abs(ref_lse)).max()
    # float32 v: the flag changes nothing.
    out32 = sdpa.attention(q, k, v.float(), isa=isa, bf16_weights=True,
                           out_dtype=torch.float32, **options)
    assert_within_tolerance(out32, q, k, v.float(), **options)


@pytest.mark.parametrize("dtype", ["float64", "int32"])
@pytest.mark.parametrize("argument", ["q", "k", "v"])
def test_torch_unsupported_dtype_names_the_argument(torch, argument, dtype):
    tensors = {name: torch.ones(1, 1, 3, 4, dtype=torch.bfloat16) for name in "qkv"}
    tensors[argument] = tensors[argument].to(getattr(torch, dtype))
    raises(UNSUPPORTED,
           r"^unsupported: %s has dtype %s; only float32, float16 or bfloat16 is "
           r"supported for a torch tensor" % (argument, dtype),
           tensors["q"], tensors["k"], tensors["v"])


def test_torch_unsupported_out_dtype(torch):
    x = torch.ones(1, 1, 2, 4)
    raises(UNSUPPORTED, r"out_dtype is float64; .* only float32, float16 or bfloat16",
           x, x, x, out_dtype=torch.float64)
