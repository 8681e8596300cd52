"""torch CPU tensors: zero-copy in, torch out, and agreement with
torch.nn.functional.scaled_dot_product_attention (run in float64, so it is a
second, independent reference; tolerance as in reference.py)."""

import numpy as np
import pytest

import sdpa
from reference import assert_matches, attention_reference

torch = pytest.importorskip("torch")
F = torch.nn.functional


def randn(generator, *shape):
    return torch.randn(*shape, generator=generator, dtype=torch.float32)


@pytest.fixture
def gen(rng):
    return torch.Generator().manual_seed(int(rng.integers(2**31)))


def torch_reference(q, k, v, **kwargs):
    q, k, v = (x.double() for x in (q, k, v))
    group = q.shape[-3] // k.shape[-3]
    # enable_gqa is recent; repeating kv heads is the same thing.
    k = k.repeat_interleave(group, dim=-3)
    v = v.repeat_interleave(group, dim=-3)
    mask = kwargs.get("attn_mask")
    if mask is not None and mask.dtype != torch.bool:
        kwargs["attn_mask"] = mask.double()
    return F.scaled_dot_product_attention(q, k, v, **kwargs).numpy()


def assert_close_to_torch(out, expected):
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert_matches(out.numpy(), expected)


SHAPES = [(2, 4, 4, 13, 13, 16, 16), (1, 6, 2, 31, 47, 40, 24), (3, 2, 1, 1, 97, 64, 64)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_torch(gen, shape):
    b, hq, hkv, tq, tk, dk, dv = shape
    q, k, v = randn(gen, b, hq, tq, dk), randn(gen, b, hkv, tk, dk), randn(gen, b, hkv, tk, dv)
    assert_close_to_torch(sdpa.attention(q, k, v), torch_reference(q, k, v))
    assert_close_to_torch(sdpa.attention(q, k, v, scale=0.3), torch_reference(q, k, v, scale=0.3))


def test_top_left_causal_is_torchs_is_causal(gen):
    q, k, v = randn(gen, 2, 3, 11, 16), randn(gen, 2, 3, 19, 16), randn(gen, 2, 3, 19, 8)
    assert_close_to_torch(sdpa.attention(q, k, v, causal="top_left"),
                          torch_reference(q, k, v, is_causal=True))


def test_bottom_right_causal_is_torchs_lower_right_mask(gen):
    q, k, v = randn(gen, 2, 3, 11, 16), randn(gen, 2, 3, 19, 16), randn(gen, 2, 3, 19, 8)
    # torch.nn.attention.bias.causal_lower_right(11, 19), materialised.
    lower_right = torch.ones(11, 19, dtype=torch.bool).tril(diagonal=19 - 11)
    assert_close_to_torch(sdpa.attention(q, k, v, causal="bottom_right"),
                          torch_reference(q, k, v, attn_mask=lower_right))


@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_masks_broadcast_like_torch(gen, kind):
    q, k, v = randn(gen, 2, 4, 9, 8), randn(gen, 2, 4, 14, 8), randn(gen, 2, 4, 14, 8)
    if kind == "bool":
        mask = torch.rand(2, 1, 9, 14, generator=gen) < 0.7
        mask[..., 0] = True  # torch gives NaN for rows that see no key
    else:
        mask = randn(gen, 1, 4, 1, 14)
    assert_close_to_torch(sdpa.attention(q, k, v, mask=mask),
                          torch_reference(q, k, v, attn_mask=mask))


def test_strided_tensors_without_copies(gen):
    # BSHD memory viewed as BHSD, q/k/v slices of one fused buffer.
    qkv = randn(gen, 2, 21, 3, 4, 16)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    assert not q.is_contiguous() and k.data_ptr() == qkv.data_ptr() + 4 * 16 * 4
    out, lse = sdpa.attention(q, k, v, causal="bottom_right", return_lse=True)
    assert lse.shape == (2, 4, 21) and isinstance(lse, torch.Tensor)
    ref_out, ref_lse = attention_reference(q.numpy(), k.numpy(), v.numpy(), causal="bottom_right")
    assert_matches(out.numpy(), ref_out, lse.numpy(), ref_lse)


def test_three_dimensional_tensors_and_expanded_kv(gen):
    q = randn(gen, 4, 10, 8)
    k = randn(gen, 1, 12, 8).expand(2, 12, 8)  # stride 0 over heads
    v = randn(gen, 2, 12, 8)
    out = sdpa.attention(q, k, v, window=(3, 1))
    assert out.shape == (4, 10, 8)
    assert_matches(out.numpy(),
                   attention_reference(q[None].numpy(), k[None].numpy(), v[None].numpy(),
                                       window=(3, 1))[0][0])


def test_tensors_that_require_grad_are_read_in_place(gen):
    q = randn(gen, 1, 2, 5, 8).requires_grad_()
    out = sdpa.attention(q, q, q)
    expected = attention_reference(*(q.detach().numpy(),) * 3)[0]
    assert_matches(out.numpy(), expected)


def test_unsupported_tensors():
    x = torch.ones(1, 1, 2, 4)
    with pytest.raises(sdpa.SdpaError, match="q has dtype float64"):
        sdpa.attention(x.double(), x, x)
    with pytest.raises(sdpa.SdpaError, match="on device meta"):
        sdpa.attention(x, torch.empty(1, 1, 2, 4, device="meta"), x)
    with pytest.raises(sdpa.SdpaError, match="mask of shape"):
        sdpa.attention(x, x, x, mask=torch.ones(3, 3, dtype=torch.bool))


def test_numpy_in_numpy_out_torch_in_torch_out():
    x = np.ones((1, 1, 2, 4), np.float32)
    assert isinstance(sdpa.attention(x, x, x), np.ndarray)
    t = torch.ones(1, 1, 2, 4)
    assert isinstance(sdpa.attention(t, t, t), torch.Tensor)


def test_out_tensor_of_any_strides_and_dtype(gen):
    q, k, v = randn(gen, 1, 4, 9, 16), randn(gen, 1, 2, 21, 16), randn(gen, 1, 2, 21, 8)
    buffer = torch.zeros(1, 9, 4, 8, dtype=torch.bfloat16)  # [B, T, H, D]
    out = buffer.transpose(1, 2)
    assert sdpa.attention(q, k, v, out=out) is out
    full = sdpa.attention(q, k, v)
    assert_close_to_torch(full, torch_reference(q, k, v))
    assert torch.equal(out, full.to(torch.bfloat16))  # rounded once, to nearest even


def test_out_must_be_a_tensor_without_grad(gen):
    q = randn(gen, 1, 1, 3, 4)
    for out, message in (
        (np.zeros((1, 1, 3, 4), np.float32), "out must be a torch tensor, like q"),
        (torch.zeros(1, 1, 3, 4, requires_grad=True), "out requires grad"),
    ):
        with pytest.raises(sdpa.SdpaError, match=message):
            sdpa.attention(q, q, q, out=out)
