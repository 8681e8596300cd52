"""Bad input becomes sdpa.SdpaError carrying the status and the message."""

import re

import numpy as np
import pytest

import sdpa

INVALID, UNSUPPORTED = 1, 2


def f32(*shape):
    return np.ones(shape, np.float32)


def raises(status, pattern, *args, **kwargs):
    with pytest.raises(sdpa.SdpaError) as info:
        sdpa.attention(*args, **kwargs)
    error = info.value
    assert error.status == status, error
    assert re.search(pattern, error.message), error.message
    assert error.message in str(error)
    return error


def test_error_is_a_value_error_and_a_runtime_error():
    assert issubclass(sdpa.SdpaError, ValueError)
    assert issubclass(sdpa.SdpaError, RuntimeError)


# Refused by the library: the message is its sdpa_last_error().


def test_mismatched_head_dims():
    raises(INVALID, r"k->shape\[3\] \(head dim\) is 8 but q->shape\[3\] is 16",
           f32(1, 2, 4, 16), f32(1, 2, 5, 8), f32(1, 2, 5, 8))


def test_query_heads_not_a_multiple_of_kv_heads():
    raises(INVALID, r"not a multiple of k->shape\[1\]",
           f32(1, 3, 4, 8), f32(1, 2, 5, 8), f32(1, 2, 5, 8))


def test_k_and_v_lengths_differ():
    raises(INVALID, r"v->shape\[2\]", f32(1, 2, 4, 8), f32(1, 2, 5, 8), f32(1, 2, 6, 8))


def test_empty_dimension():
    raises(INVALID, r"shape\[2\] is 0", f32(1, 2, 0, 8), f32(1, 2, 5, 8), f32(1, 2, 5, 8))


def test_bad_thread_count_comes_from_context_creation():
    error = raises(INVALID, r"\S", f32(1, 1, 2, 4), f32(1, 1, 2, 4), f32(1, 1, 2, 4), threads=-2)
    assert "-2" in error.message


def test_isa_bit_that_is_not_one_isa():
    raises(INVALID, r"\S", f32(1, 1, 2, 4), f32(1, 1, 2, 4), f32(1, 1, 2, 4), isa=3)


def test_isa_the_cpu_lacks_is_unsupported():
    tried = ("AVX3_ZEN4", "AVX3_DL", "AVX3", "AVX2", "NEON", "SVE", "SVE2")
    missing = [n for n in tried if n not in sdpa.available_isas()]
    if not missing:
        pytest.skip("this CPU runs every ISA tried here")
    raises(UNSUPPORTED, r"\S", f32(1, 1, 2, 4), f32(1, 1, 2, 4), f32(1, 1, 2, 4), isa=missing[0])


# Refused here, before the call, with the same exception type.


def test_float64_is_unsupported():
    raises(UNSUPPORTED, r"q has dtype float64",
           np.ones((1, 1, 2, 4)), f32(1, 1, 2, 4), f32(1, 1, 2, 4))


def test_int_mask_is_unsupported():
    raises(UNSUPPORTED, r"mask has dtype int64; only float32 or bool",
           f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4), mask=np.ones((2, 3), np.int64))


def test_stride_not_a_multiple_of_the_itemsize():
    buffer = np.zeros(64, np.uint8)
    q = np.ndarray((1, 1, 2, 4), np.float32, buffer, 0, (64, 64, 18, 4))
    raises(INVALID, r"stride of 18 bytes on axis 2, not a multiple of its itemsize 4",
           q, f32(1, 1, 3, 4), f32(1, 1, 3, 4))


def test_misaligned_data():
    buffer = np.zeros(80, np.uint8)
    q = np.ndarray((1, 1, 2, 4), np.float32, buffer, 2, (32, 32, 16, 4))
    raises(INVALID, r"not aligned", q, f32(1, 1, 3, 4), f32(1, 1, 3, 4))


def test_non_native_byte_order():
    q = np.ones((1, 1, 2, 4), np.float32).astype(np.float32().dtype.newbyteorder())
    raises(UNSUPPORTED, r"byte order", q, f32(1, 1, 3, 4), f32(1, 1, 3, 4))


def test_a_list_is_not_silently_copied():
    raises(INVALID, r"k must be a numpy.ndarray or a torch.Tensor, got list",
           f32(1, 1, 2, 4), [[[[1.0] * 4] * 3]], f32(1, 1, 3, 4))


def test_wrong_rank():
    raises(INVALID, r"4-D.*3-D", f32(2, 4), f32(2, 4), f32(2, 4))
    raises(INVALID, r"same number of dimensions", f32(1, 1, 2, 4), f32(1, 3, 4), f32(1, 3, 4))
    raises(INVALID, r"k has 5 dimensions; at most 4",
           f32(1, 1, 2, 4), f32(1, 1, 1, 3, 4), f32(1, 1, 3, 4))
    raises(INVALID, r"q must be 4-D", f32(1, 1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4))


def test_mask_that_does_not_broadcast():
    raises(INVALID, r"mask of shape \[2, 5\] does not broadcast to .*\[1, 1, 2, 3\]",
           f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4), mask=np.ones((2, 5), bool))


@pytest.mark.parametrize("causal", [True, "causal", 1])
def test_bad_causal(causal):
    raises(INVALID, r"causal must be", f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4),
           causal=causal)


@pytest.mark.parametrize("window", [(1, 2, 3), "3", (1.5, 2), True])
def test_bad_window(window):
    raises(INVALID, r"window", f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4), window=window)


@pytest.mark.parametrize("scale", [0, 0.0, 1e-50])
def test_zero_scale_is_refused_not_reinterpreted(scale):
    raises(INVALID, r"scale=None", f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4), scale=scale)


def test_non_finite_scale_comes_from_the_library():
    raises(INVALID, r"scale", f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4), scale=float("inf"))


def test_unknown_isa_name_lists_the_known_ones():
    error = raises(INVALID, r"unknown isa 'AVX9'", f32(1, 1, 2, 4), f32(1, 1, 3, 4),
                   f32(1, 1, 3, 4), isa="AVX9")
    assert "SCALAR" in error.message


@pytest.mark.parametrize("threads", [1.5, "2", True, 2**40])
def test_bad_threads_type(threads):
    raises(INVALID, r"threads", f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4), threads=threads)


def test_a_failure_does_not_poison_the_next_call():
    with pytest.raises(sdpa.SdpaError):
        sdpa.attention(f32(1, 2, 4, 16), f32(1, 2, 5, 8), f32(1, 2, 5, 8))
    out = sdpa.attention(f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4))
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)
