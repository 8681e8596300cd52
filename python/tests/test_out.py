"""sdpa.attention(..., out=buffer): the result lands in the caller's array,
of any strides and float dtype, and bad buffers are refused before any
write."""

import numpy as np
import pytest

import sdpa
from reference import assert_matches, attention_reference

INVALID, UNSUPPORTED = 1, 2


def randn(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def inputs(rng, b=2, hq=4, hkv=2, tq=13, tk=29, dk=24, dv=20):
    return (randn(rng, b, hq, tq, dk), randn(rng, b, hkv, tk, dk), randn(rng, b, hkv, tk, dv))


def test_contiguous_out_is_filled_and_returned(rng):
    q, k, v = inputs(rng)
    out = np.full((2, 4, 13, 20), np.nan, np.float32)
    result, lse = sdpa.attention(q, k, v, out=out, return_lse=True, causal="bottom_right")
    assert result is out
    ref_out, ref_lse = attention_reference(q, k, v, causal="bottom_right")
    assert_matches(out, ref_out, lse, ref_lse)


def test_bshd_slice_of_a_wider_buffer_leaves_the_rest_alone(rng):
    # [B, T, H, D] layout with padding columns on each side of the heads.
    q, k, v = inputs(rng)
    buffer = np.full((2, 13, 4, 26), 7.0, np.float32)
    out = buffer[:, :, :, 3:23].transpose(0, 2, 1, 3)
    assert sdpa.attention(q, k, v, out=out) is out
    assert_matches(out, attention_reference(q, k, v)[0])
    assert (buffer[..., :3] == 7.0).all() and (buffer[..., 23:] == 7.0).all()


def test_reversed_out(rng):
    q, k, v = inputs(rng)
    buffer = np.zeros((2, 4, 13, 20), np.float32)
    out = buffer[:, ::-1, ::-1]  # negative strides
    sdpa.attention(q, k, v, out=out)
    assert np.array_equal(out, sdpa.attention(q, k, v))


def test_float16_out_from_float32_inputs(rng):
    q, k, v = inputs(rng)
    out = np.empty((2, 4, 13, 20), np.float16)
    sdpa.attention(q, k, v, out=out)
    expected = sdpa.attention(q, k, v, out_dtype=np.float16)
    assert np.array_equal(out, expected)  # one rounding, the same one


def test_three_dimensional_out(rng):
    q, k, v = (x[0] for x in inputs(rng))
    out = np.empty((4, 13, 20), np.float32)
    result, lse = sdpa.attention(q, k, v, out=out, return_lse=True)
    assert result is out and lse.shape == (4, 13)
    ref_out, ref_lse = attention_reference(q[None], k[None], v[None])
    assert_matches(out, ref_out[0], lse, ref_lse[0])


def test_out_equal_to_the_allocated_result(rng):
    q, k, v = inputs(rng, tq=1, tk=257, dk=64, dv=64)
    out = np.empty((2, 4, 1, 64), np.float32)
    sdpa.attention(q, k, v, out=out, threads=1)
    assert np.array_equal(out, sdpa.attention(q, k, v, threads=1))


def refused(status, pattern, out, *args, **kwargs):
    before = out.copy() if isinstance(out, np.ndarray) else None
    with pytest.raises(sdpa.SdpaError) as info:
        sdpa.attention(*args, out=out, **kwargs)
    assert info.value.status == status, info.value
    assert pattern in info.value.message, info.value.message
    if before is not None:
        assert np.array_equal(out, before, equal_nan=True), "out was written"


def test_wrong_shape(rng):
    q, k, v = inputs(rng)
    refused(INVALID, "out has shape [2, 4, 13, 24]; the output of these inputs is "
            "[2, 4, 13, 20]", np.zeros((2, 4, 13, 24), np.float32), q, k, v)


def test_wrong_rank_for_three_dimensional_inputs(rng):
    q, k, v = (x[0] for x in inputs(rng))
    refused(INVALID, "out has shape [1, 4, 13, 20]; the output of these inputs "
            "is [4, 13, 20]", np.zeros((1, 4, 13, 20), np.float32), q, k, v)


def test_not_an_array(rng):
    q, k, v = inputs(rng)
    refused(INVALID, "out must be a NumPy array, like q, got list", [0.0], q, k, v)


def test_read_only(rng):
    q, k, v = inputs(rng)
    out = np.zeros((2, 4, 13, 20), np.float32)
    out.flags.writeable = False
    refused(INVALID, "out is a read-only NumPy array", out, q, k, v)


def test_unsupported_dtype(rng):
    q, k, v = inputs(rng)
    refused(UNSUPPORTED, "out has dtype float64; only float32 or float16",
            np.zeros((2, 4, 13, 20)), q, k, v)


def test_out_dtype_that_disagrees(rng):
    q, k, v = inputs(rng)
    refused(INVALID, "out_dtype is 'float16' but out has dtype float32",
            np.zeros((2, 4, 13, 20), np.float32), q, k, v, out_dtype="float16")


def test_out_dtype_that_agrees(rng):
    q, k, v = inputs(rng)
    out = np.zeros((2, 4, 13, 20), np.float16)
    assert sdpa.attention(q, k, v, out=out, out_dtype=np.float16) is out


def test_elements_sharing_an_address_are_refused_by_the_library(rng):
    q, k, v = inputs(rng)
    # A writable view whose rows all alias one 20-float row.
    out = np.lib.stride_tricks.as_strided(
        np.zeros(20, np.float32), (2, 4, 13, 20), (0, 0, 0, 4), writeable=True)
    refused(INVALID, "maps different elements to the same memory", out, q, k, v)


def test_out_overlapping_an_input_is_refused_by_the_library(rng):
    q, k, v = inputs(rng, dk=20)
    refused(INVALID, "overlaps q", q, q, k, v)
