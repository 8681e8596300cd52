"""sdpa.attention against the float64 reference (tolerance: reference.py)."""

import tracemalloc

import numpy as np
import pytest

import sdpa
from reference import assert_matches, attention_reference, visible_keys


def randn(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def check(q, k, v, **options):
    """Runs sdpa.attention with lse and compares both with the reference."""
    out, lse = sdpa.attention(q, k, v, return_lse=True, **options)
    options.pop("threads", None)
    options.pop("isa", None)
    ref_out, ref_lse = attention_reference(q, k, v, **options)
    assert_matches(out, ref_out, lse, ref_lse)
    return out, lse, ref_lse


# (batch, q heads, kv heads, q len, k len, key dim, value dim): odd and prime
# sizes, single rows, decode (Tq = 1), GQA, Dv != Dk.
SHAPES = [
    (1, 1, 1, 1, 1, 1, 1),
    (2, 3, 3, 7, 13, 5, 5),
    (1, 4, 2, 17, 31, 8, 12),
    (3, 6, 2, 29, 11, 64, 32),
    (1, 2, 1, 97, 101, 61, 67),
    (2, 5, 1, 1, 257, 128, 128),
    (1, 8, 8, 64, 64, 64, 64),
    (1, 1, 1, 131, 127, 3, 19),
    (1, 12, 3, 23, 523, 80, 40),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_random_shapes(rng, shape):
    b, hq, hkv, tq, tk, dk, dv = shape
    check(randn(rng, b, hq, tq, dk), randn(rng, b, hkv, tk, dk), randn(rng, b, hkv, tk, dv))


def test_without_lse_returns_only_out(rng):
    q, k, v = randn(rng, 2, 3, 5, 8), randn(rng, 2, 3, 9, 8), randn(rng, 2, 3, 9, 4)
    out = sdpa.attention(q, k, v)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.shape == (2, 3, 5, 4)
    assert_matches(out, attention_reference(q, k, v)[0])


def test_gqa_query_head_h_reads_kv_head_h_over_group(rng):
    # Each kv head's values are a distinct constant, so the output names the
    # kv head each query head read: 4 query heads per kv head.
    q, k = randn(rng, 1, 8, 6, 16), randn(rng, 1, 2, 10, 16)
    v = np.empty((1, 2, 10, 3), np.float32)
    v[:, 0], v[:, 1] = 1.0, 2.0
    out = sdpa.attention(q, k, v)
    np.testing.assert_allclose(out[0, :4], 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[0, 4:], 2.0, rtol=1e-6)


@pytest.mark.parametrize("causal", ["top_left", "bottom_right"])
@pytest.mark.parametrize("tq,tk", [(19, 19), (7, 23), (23, 7), (1, 37)])
def test_causal(rng, causal, tq, tk):
    q, k, v = randn(rng, 2, 3, tq, 16), randn(rng, 2, 3, tk, 16), randn(rng, 2, 3, tk, 8)
    out, lse, ref_lse = check(q, k, v, causal=causal)
    # Where causal hides a key, it must change the result (a library that
    # ignored it would fail here).
    if not visible_keys(tq, tk, causal).all():
        assert not np.allclose(out, attention_reference(q, k, v)[0], atol=1e-3)
    if causal == "bottom_right" and tq > tk:
        # The first Tq - Tk queries see no key: 0 output, lse -inf.
        assert np.isneginf(ref_lse[:, :, : tq - tk]).all()
        assert (out[:, :, : tq - tk] == 0).all()


@pytest.mark.parametrize(
    "window",
    [0, 3, (5, None), (None, 2), (4, 0), (0, 6), (2, -1), (-1, -1)],
    ids=str,
)
@pytest.mark.parametrize("causal", [None, "top_left", "bottom_right"])
def test_window(rng, window, causal):
    q, k, v = randn(rng, 1, 2, 21, 12), randn(rng, 1, 2, 33, 12), randn(rng, 1, 2, 33, 12)
    check(q, k, v, window=window, causal=causal)


def test_window_zero_without_causal_sees_only_the_diagonal(rng):
    # d(i) = i + Tk - Tq even without causal: each query sees one key, so its
    # output is exactly that key's value row.
    q, k, v = randn(rng, 1, 1, 5, 4), randn(rng, 1, 1, 8, 4), randn(rng, 1, 1, 8, 4)
    out = sdpa.attention(q, k, v, window=(0, 0))
    np.testing.assert_allclose(out[0, 0], v[0, 0, 3:], rtol=1e-6)


MASK_SHAPES = [
    (17, 29),  # [Tq, Tk]
    (1, 1, 17, 29),
    (2, 1, 17, 29),
    (1, 3, 1, 29),
    (2, 3, 17, 29),
    (29,),  # one key mask for every query
]


@pytest.mark.parametrize("mask_shape", MASK_SHAPES, ids=str)
def test_bool_mask(rng, mask_shape):
    q, k, v = randn(rng, 2, 3, 17, 8), randn(rng, 2, 3, 29, 8), randn(rng, 2, 3, 29, 6)
    mask = rng.random(mask_shape) < 0.7
    mask[..., 0] = True  # keep every row alive here; empty rows: below
    out, _, _ = check(q, k, v, mask=mask)
    assert not np.allclose(out, attention_reference(q, k, v)[0], atol=1e-3)


@pytest.mark.parametrize("mask_shape", MASK_SHAPES, ids=str)
def test_additive_mask(rng, mask_shape):
    q, k, v = randn(rng, 2, 3, 17, 8), randn(rng, 2, 3, 29, 8), randn(rng, 2, 3, 29, 6)
    mask = randn(rng, *mask_shape) * 2
    out, _, _ = check(q, k, v, mask=mask)
    assert not np.allclose(out, attention_reference(q, k, v)[0], atol=1e-3)


def test_fully_masked_rows_give_zero_and_minus_inf(rng):
    q, k, v = randn(rng, 1, 2, 6, 8), randn(rng, 1, 2, 9, 8), randn(rng, 1, 2, 9, 8)
    keep = np.ones((1, 2, 6, 9), bool)
    keep[0, 0, 2] = False  # bool mask drops a whole row
    additive = np.zeros((1, 2, 6, 9), np.float32)
    additive[0, 1, 4] = -np.inf  # -inf everywhere in a row of an additive mask
    for mask, (h, i) in ((keep, (0, 2)), (additive, (1, 4))):
        out, lse, ref_lse = check(q, k, v, mask=mask)
        assert np.isneginf(ref_lse[0, h, i]) and np.isneginf(lse[0, h, i])
        assert (out[0, h, i] == 0).all()
        assert np.isfinite(lse).sum() == lse.size - 1


def test_mask_with_causal_and_window(rng):
    q, k, v = randn(rng, 2, 4, 13, 8), randn(rng, 2, 2, 20, 8), randn(rng, 2, 2, 20, 5)
    check(q, k, v, mask=rng.random((2, 1, 13, 20)) < 0.8, causal="bottom_right", window=(6, None))
    check(q, k, v, mask=randn(rng, 13, 20), causal="top_left", window=4)


@pytest.mark.parametrize("scale", [0.05, 1.0, -0.3, 2.5])
def test_scale(rng, scale):
    q, k, v = randn(rng, 1, 2, 9, 16), randn(rng, 1, 2, 14, 16), randn(rng, 1, 2, 14, 16)
    check(q, k, v, scale=scale)


def test_default_scale_is_inverse_sqrt_key_dim(rng):
    q, k, v = randn(rng, 1, 2, 9, 25), randn(rng, 1, 2, 14, 25), randn(rng, 1, 2, 14, 7)
    np.testing.assert_array_equal(
        sdpa.attention(q, k, v), sdpa.attention(q, k, v, scale=0.2)
    )


def test_nan_propagates_to_the_affected_row_only(rng):
    q, k, v = randn(rng, 1, 2, 8, 8), randn(rng, 1, 2, 8, 8), randn(rng, 1, 2, 8, 8)
    q[0, 1, 3, 0] = np.nan
    out = sdpa.attention(q, k, v)
    assert np.isnan(out[0, 1, 3]).all()
    finite = np.ones(out.shape, bool)
    finite[0, 1, 3] = False
    assert np.isfinite(out[finite]).all()


# Strided inputs: passed through as element strides, never copied.


def test_bshd_layout(rng):
    # [B, T, H, D] memory, viewed as [B, H, T, D].
    q = randn(rng, 2, 11, 4, 16).transpose(0, 2, 1, 3)
    k = randn(rng, 2, 19, 2, 16).transpose(0, 2, 1, 3)
    v = randn(rng, 2, 19, 2, 24).transpose(0, 2, 1, 3)
    assert not q.flags.c_contiguous
    check(q, k, v, causal="bottom_right")


def test_slices_of_a_fused_qkv_buffer(rng):
    # One [B, T, 3, H, D] projection output; q, k, v are views into it.
    qkv = randn(rng, 2, 23, 3, 4, 32)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    assert np.shares_memory(q, qkv)
    check(q, k, v, causal="top_left")


def test_a_head_slice_and_a_strided_head_dim(rng):
    big = randn(rng, 2, 9, 15, 40)
    q = big[:, 2:8:2, :, ::2]  # every other head, every other feature
    k = randn(rng, 2, 3, 40, 30)[:, :, 5:26, 3:23]
    v = randn(rng, 2, 3, 21, 50)[..., ::5]
    check(q, k, v)


def test_negative_strides(rng):
    q = randn(rng, 2, 3, 12, 8)[:, ::-1, ::-1]
    k = randn(rng, 2, 3, 17, 8)[..., ::-1]
    v = randn(rng, 2, 3, 17, 8)[:, :, ::-1]
    assert any(s < 0 for s in q.strides)
    check(q, k, v, causal="bottom_right")


def test_broadcast_kv_over_batch(rng):
    # Stride 0: one K/V for every batch entry.
    q = randn(rng, 4, 2, 7, 8)
    k = np.broadcast_to(randn(rng, 1, 2, 9, 8), (4, 2, 9, 8))
    v = np.broadcast_to(randn(rng, 1, 2, 9, 8), (4, 2, 9, 8))
    assert k.strides[0] == 0
    check(q, k, v)


def test_three_dimensional_inputs(rng):
    q, k, v = randn(rng, 4, 13, 8), randn(rng, 2, 17, 8), randn(rng, 2, 17, 5)
    mask = rng.random((13, 17)) < 0.8
    mask[:, 0] = True
    out, lse = sdpa.attention(q, k, v, mask=mask, causal="bottom_right", return_lse=True)
    assert out.shape == (4, 13, 5) and lse.shape == (4, 13)
    ref_out, ref_lse = attention_reference(
        q[None], k[None], v[None], mask=mask, causal="bottom_right")
    assert_matches(out, ref_out[0], lse, ref_lse[0])


def test_strided_inputs_are_not_copied(rng):
    # A copy of q would allocate as much as q; the call may allocate the
    # output and lse (and small bookkeeping), not an input-sized buffer.
    # NumPy reports its allocations to tracemalloc; libsdpa's own
    # workspace (C++ new) is not traced, which is fine: this is about us.
    base = randn(rng, 1, 2048, 3, 8, 64)  # fused QKV, 12 MiB
    q, k, v = (base[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    q = q[:, :, :64]  # few queries: small output, large k and v
    mask = np.broadcast_to(rng.random(2048) < 0.9, (1, 8, 64, 2048))
    tracemalloc.start()
    try:
        sdpa.attention(q, k, v, mask=mask, return_lse=True)  # warm caches
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        out, lse = sdpa.attention(q, k, v, mask=mask, return_lse=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    allocated = peak - before
    assert allocated < out.nbytes + lse.nbytes + 64 * 1024, allocated
    assert k.nbytes > 4 * (out.nbytes + lse.nbytes + 64 * 1024)


# Threads and ISAs.


def test_every_available_isa_matches_the_reference(rng, isa_name):
    assert sdpa.context_info(isa=isa_name)["isa"] == isa_name
    q, k, v = randn(rng, 2, 4, 37, 40), randn(rng, 2, 2, 53, 40), randn(rng, 2, 2, 53, 24)
    mask = rng.random((37, 53)) < 0.9
    for causal in (None, "bottom_right"):
        check(q, k, v, isa=isa_name, causal=causal, mask=mask)
    # Decode: one query row, long keys.
    check(q[:, :, :1], k, v, isa=isa_name, threads=2)


def test_isa_names_are_case_insensitive():
    name = sdpa.available_isas()[-1]
    assert sdpa.context_info(isa=name.lower())["isa"] == name


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads(rng, threads):
    assert sdpa.context_info(threads=threads)["threads"] == threads
    q, k, v = randn(rng, 2, 4, 70, 32), randn(rng, 2, 4, 90, 32), randn(rng, 2, 4, 90, 32)
    out, _, _ = check(q, k, v, threads=threads, causal="top_left")
    # Many query rows: no split-KV, so the same bits for any thread count.
    np.testing.assert_array_equal(out, sdpa.attention(q, k, v, threads=1, causal="top_left"))


def test_default_context_runs_an_available_isa():
    # The best one unless $SDPA_ISA caps it, so only membership is asserted.
    info = sdpa.context_info()
    assert info["threads"] >= 1
    assert info["isa"] in sdpa.available_isas()
