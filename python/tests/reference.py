"""A float64 NumPy attention written from the definition in sdpa.h, and the
comparison the tests use. Slow and obvious on purpose.

Tolerance (stated once, used everywhere): the kernel works in float32, so
its output may differ from the float64 reference by at most
OUT_RTOL * max|reference output| (absolute, per element), i.e. 1e-5 of the
output's scale; lse by at most LSE_RTOL * max(1, |reference lse|) per row.
Rows that see no key must be exactly 0 (output) and -inf (lse).
"""

import numpy as np

OUT_RTOL = 1e-5
LSE_RTOL = 1e-5


def visible_keys(q_len, k_len, causal=None, window=(-1, -1)):
    """[Tq, Tk] bool: which keys each query may see before the mask.

    d(i) = i for "top_left", i + Tk - Tq otherwise (no causal included);
    key j is visible iff (no causal or j <= d(i)) and
    (left < 0 or j >= d(i) - left) and (right < 0 or j <= d(i) + right).
    """
    i = np.arange(q_len)[:, None]
    j = np.arange(k_len)[None, :]
    d = i if causal == "top_left" else i + k_len - q_len
    visible = np.ones((q_len, k_len), dtype=bool)
    if causal is not None:
        visible &= j <= d
    left, right = window
    if left is not None and left >= 0:
        visible &= j >= d - left
    if right is not None and right >= 0:
        visible &= j <= d + right
    return visible


def attention_reference(q, k, v, mask=None, causal=None, window=None, scale=None):
    """out [B, Hq, Tq, Dv] and lse [B, Hq, Tq] in float64 (4-D inputs)."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    batch, q_heads, q_len, key_dim = q.shape
    kv_heads, k_len = k.shape[1], k.shape[2]
    assert q_heads % kv_heads == 0
    group = q_heads // kv_heads  # query head h reads kv head h // group
    k = np.repeat(k, group, axis=1)
    v = np.repeat(v, group, axis=1)
    if scale is None:
        scale = 1.0 / np.sqrt(key_dim)
    if window is None:
        window = (-1, -1)
    elif isinstance(window, int):
        window = (window, window)
    scores = np.einsum("bhid,bhjd->bhij", q, k) * scale
    visible = np.broadcast_to(
        visible_keys(q_len, k_len, causal, window), scores.shape
    ).copy()
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype == bool:
            visible &= np.broadcast_to(mask, scores.shape)
        else:
            scores = scores + mask.astype(np.float64)
    scores = np.where(visible, scores, -np.inf)
    row_max = scores.max(axis=-1, keepdims=True)
    seen = np.isfinite(row_max)  # -inf: the row sees no key
    shifted = np.exp(scores - np.where(seen, row_max, 0.0))
    denom = shifted.sum(axis=-1, keepdims=True)
    out = np.where(seen, shifted @ v / np.where(seen, denom, 1.0), 0.0)
    with np.errstate(divide="ignore"):
        lse = np.where(seen, row_max + np.log(denom), -np.inf)[..., 0]
    return out, lse


def assert_matches(out, ref_out, lse=None, ref_lse=None):
    """Checks a float32 result against the float64 reference (see top)."""
    out = np.asarray(out, dtype=np.float64)
    assert out.shape == ref_out.shape, (out.shape, ref_out.shape)
    assert np.isfinite(out).all(), "non-finite output"
    scale = np.abs(ref_out).max() if ref_out.size else 0.0
    error = np.abs(out - ref_out).max() if out.size else 0.0
    assert error <= OUT_RTOL * scale, (
        "max |out - reference| = %.3g exceeds %.0e * max|reference| = %.3g"
        % (error, OUT_RTOL, OUT_RTOL * scale)
    )
    if ref_lse is None:
        return
    blind = ~np.isfinite(ref_lse)  # rows that see no key
    assert (out.reshape(ref_lse.shape + (-1,))[blind] == 0).all(), (
        "rows that see no key must be exactly 0"
    )
    lse = np.asarray(lse, dtype=np.float64)
    assert lse.shape == ref_lse.shape, (lse.shape, ref_lse.shape)
    assert (lse[blind] == -np.inf).all(), "rows that see no key need lse -inf"
    seen = ~blind
    lse_error = np.abs(lse[seen] - ref_lse[seen])
    lse_bound = LSE_RTOL * np.maximum(1.0, np.abs(ref_lse[seen]))
    assert (lse_error <= lse_bound).all(), (
        "lse differs by up to %.3g" % (lse_error.max() if lse_error.size else 0)
    )
