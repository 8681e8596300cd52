"""sdpa.attention: NumPy arrays and torch CPU tensors in, same type out.

Inputs are described to the C API in place: their data pointer, their dtype
(float32, float16 or, for torch, bfloat16; itemsize 4 or 2) and their
strides (bytes / itemsize for NumPy, torch's own element strides), so
transposed, sliced, reversed and broadcast (stride 0) views cost no copy,
and half-precision inputs are not widened here. Only the output (of
out_dtype, unless the caller passes its own `out`) and lse (float32) are
allocated here.
"""

import ctypes
import sys

import numpy as np

from . import _capi
from ._runtime import check, contexts, invalid, unsupported

_CAUSAL = {
    None: _capi.CAUSAL_NONE,
    "none": _capi.CAUSAL_NONE,
    "top_left": _capi.CAUSAL_TOP_LEFT,
    "bottom_right": _capi.CAUSAL_BOTTOM_RIGHT,
}


def _torch_if_tensor(x):
    """torch, if x is a torch.Tensor (torch is never imported by us: a caller
    holding a tensor has imported it already)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch
    return None


class _View:
    """One array as the C API sees it: pointer, 4-D shape, element strides,
    sdpa_dtype. Keeps the array alive as long as the view."""

    def __init__(self, array, data, shape, strides, dtype):
        self.array = array
        self.tensor = _capi.Tensor(data, dtype, tuple(shape), tuple(strides))

    def pointer(self):
        return ctypes.pointer(self.tensor)


# The dtypes q, k and v may have, by name; out may have the same ones.
# NumPy has no bfloat16.
_FLOATS = {
    "numpy": {"float32": _capi.DTYPE_F32, "float16": _capi.DTYPE_F16},
    "torch": {
        "float32": _capi.DTYPE_F32,
        "float16": _capi.DTYPE_F16,
        "bfloat16": _capi.DTYPE_BF16,
    },
}
_MASK_DTYPES = {"float32": _capi.DTYPE_F32, "bool": _capi.DTYPE_BOOL}
# The same for NumPy, keyed by dtype object: str(dtype) costs ~2 µs, which
# adds up in a small decoding call. Anything else takes the path above,
# which names the problem.
_NUMPY_FAST = {np.dtype(name): value for name, value in _FLOATS["numpy"].items()}
_NUMPY_MASK_FAST = {np.dtype(name): value for name, value in _MASK_DTYPES.items()}
_KIND_NAME = {"numpy": "a NumPy array", "torch": "a torch tensor"}
_CONVERT_HINT = {"numpy": ".astype(np.float32)", "torch": ".float()"}


def _one_of(names):
    names = list(names)
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def _sdpa_dtype(name, dtype_name, kind, allow_bool):
    """The sdpa_dtype of argument `name`, an array of `kind` ("numpy" or
    "torch") whose dtype is called dtype_name. A mask (allow_bool) may be
    float32 or bool, as in the C API; q, k and v any float of _FLOATS."""
    allowed = _MASK_DTYPES if allow_bool else _FLOATS[kind]
    if dtype_name in allowed:
        return allowed[dtype_name]
    raise unsupported(
        "%s has dtype %s; only %s is supported%s (convert it explicitly, "
        "e.g. %s, if a copy is acceptable)"
        % (
            name,
            dtype_name,
            _one_of(allowed),
            "" if allow_bool else " for " + _KIND_NAME[kind],
            _CONVERT_HINT[kind],
        )
    )


def _dtype_name(dtype, torch):
    """"float16" for np.float16, np.dtype("float16"), torch.float16 or
    "float16"; None if dtype names no dtype at all."""
    if torch is not None and isinstance(dtype, torch.dtype):
        return str(dtype).replace("torch.", "")
    if isinstance(dtype, str) and dtype in _FLOATS["torch"]:
        return dtype  # "bfloat16" too, which np.dtype does not know
    try:
        return np.dtype(dtype).name
    except TypeError:
        return None


def _out_dtype(out_dtype, torch):
    """(name, sdpa_dtype) of the output for an out_dtype that is not None:
    one of the floats q's kind (NumPy or torch) has."""
    kind = "numpy" if torch is None else "torch"
    name = _dtype_name(out_dtype, sys.modules.get("torch"))
    if name is None:
        raise invalid(
            "out_dtype must be None or a dtype (e.g. %s), got %r"
            % ("np.float16" if torch is None else "torch.bfloat16", out_dtype)
        )
    if name not in _FLOATS[kind]:
        if kind == "numpy" and name == "bfloat16":
            raise unsupported(
                "out_dtype is bfloat16, but q is a NumPy array, so the output "
                "is one too, and NumPy has no bfloat16 (pass torch tensors)"
            )
        raise unsupported(
            "out_dtype is %s; the output is %s, like q, and only %s is "
            "supported for it" % (name, _KIND_NAME[kind], _one_of(_FLOATS[kind]))
        )
    return name, _FLOATS[kind][name]


def _numpy_view(name, x, allow_bool):
    if not x.dtype.isnative:
        raise unsupported("%s has non-native byte order (%s)" % (name, x.dtype.str))
    dtype = (_NUMPY_MASK_FAST if allow_bool else _NUMPY_FAST).get(x.dtype)
    if dtype is None:
        dtype = _sdpa_dtype(name, str(x.dtype), "numpy", allow_bool)
    itemsize = x.itemsize
    for axis, stride in enumerate(x.strides):
        if stride % itemsize:
            raise invalid(
                "%s has a stride of %d bytes on axis %d, not a multiple of its "
                "itemsize %d: the C API counts strides in elements"
                % (name, stride, axis, itemsize)
            )
    data = x.ctypes.data
    if data % itemsize:
        raise invalid(
            "%s starts at address 0x%x, not aligned to its itemsize %d"
            % (name, data, itemsize)
        )
    strides = [s // itemsize for s in x.strides]
    return _View(x, data, x.shape, strides, dtype)


def _torch_view(name, x, torch, allow_bool):
    if x.device.type != "cpu":
        raise unsupported("%s is on device %s; only CPU tensors" % (name, x.device))
    if x.layout != torch.strided:
        raise unsupported("%s has layout %s; only strided tensors" % (name, x.layout))
    dtype = _sdpa_dtype(name, str(x.dtype).replace("torch.", ""), "torch", allow_bool)
    return _View(x, x.data_ptr(), tuple(x.shape), x.stride(), dtype)


def _view(name, x, allow_bool=False):
    if len(getattr(x, "shape", ())) > 4:
        raise invalid("%s has %d dimensions; at most 4" % (name, len(x.shape)))
    torch = _torch_if_tensor(x)
    if torch is not None:
        return _torch_view(name, x, torch, allow_bool)
    if isinstance(x, np.ndarray):
        return _numpy_view(name, x, allow_bool)
    raise invalid(
        "%s must be a numpy.ndarray or a torch.Tensor, got %s (use np.asarray "
        "if a copy is acceptable)" % (name, type(x).__name__)
    )


def _as_4d(view, ndim):
    """Gives a 3-D [H, T, D] view a leading batch of 1."""
    if ndim == 3:
        view.tensor.shape[:] = [1] + list(view.tensor.shape)[:3]
        view.tensor.strides[:] = [0] + list(view.tensor.strides)[:3]
    return view


def _caller_out(out, shape, torch, out_dtype):
    """The view of a caller's `out`: q's kind (NumPy or torch), exactly
    `shape`, writable, any strides (the library refuses ones where two
    elements share an address, or that overlap an input)."""
    kind = "numpy" if torch is None else "torch"
    if _torch_if_tensor(out) is not torch or (
        torch is None and not isinstance(out, np.ndarray)
    ):
        raise invalid(
            "out must be %s, like q, got %s"
            % (_KIND_NAME[kind], type(out).__name__)
        )
    if tuple(out.shape) != tuple(shape):
        raise invalid(
            "out has shape %s; the output of these inputs is %s"
            % (list(out.shape), list(shape))
        )
    if torch is None and not out.flags.writeable:
        raise invalid("out is a read-only NumPy array")
    if torch is not None and out.requires_grad:
        raise invalid(
            "out requires grad; sdpa.attention writes it outside autograd "
            "(pass a tensor without requires_grad, or out.detach())"
        )
    view = _view("out", out)
    if out_dtype is not None:
        out_name = str(out.dtype).replace("torch.", "")
        if _dtype_name(out_dtype, torch) != out_name:
            raise invalid(
                "out_dtype is %r but out has dtype %s; pass one or the other"
                % (out_dtype, out_name)
            )
    return view


def _broadcast_mask(mask, shape):
    """mask broadcast to shape (stride 0 where it repeats), no copy."""
    torch = _torch_if_tensor(mask)
    try:
        if torch is not None:
            return mask.expand(*shape)
        if isinstance(mask, np.ndarray):
            return np.broadcast_to(mask, shape)
    except (ValueError, RuntimeError):
        raise invalid(
            "mask of shape %s does not broadcast to [batch, q heads, q len, "
            "k len] = %s" % (list(mask.shape), list(shape))
        ) from None
    return mask  # not an array: _view names the type


def _window(window):
    if window is None:
        return -1, -1
    if isinstance(window, int) and not isinstance(window, bool):
        return window, window
    try:
        left, right = window
    except (TypeError, ValueError):
        raise invalid(
            "window must be None, an int or a (left, right) pair, got %r" % (window,)
        ) from None
    out = []
    for side in (left, right):
        if side is None:
            out.append(-1)
        elif isinstance(side, int) and not isinstance(side, bool):
            if not -(2**63) <= side < 2**63:
                raise invalid("window %r does not fit int64" % (window,))
            out.append(side)
        else:
            raise invalid("window sides must be ints or None, got %r" % (window,))
    return tuple(out)


def _scale(scale):
    if scale is None:
        return 0.0  # the C API's 0: 1/sqrt(Dk)
    value = ctypes.c_float(float(scale)).value
    if value == 0.0:
        # The C API reads 0 as "use 1/sqrt(Dk)": passing it through would
        # silently compute something else than what was asked.
        raise invalid(
            "scale %r is 0 as a float32, which the C API reserves for the "
            "default 1/sqrt(Dk); pass scale=None for that" % (scale,)
        )
    return value


def attention(
    q,
    k,
    v,
    *,
    mask=None,
    causal=None,
    window=None,
    scale=None,
    return_lse=False,
    threads=None,
    isa=None,
    out_dtype=None,
    out=None,
    bf16_weights=False,
):
    """O = softmax(q·kᵀ·scale + mask)·v, computed by libsdpa.

    Args:
      q: [B, Hq, Tq, Dk] (or 3-D [Hq, Tq, Dk]); a numpy.ndarray or a CPU
        torch.Tensor, with any strides (no copy is made). float32 or float16
        (NumPy), float32, float16 or bfloat16 (torch).
      k: [B, Hkv, Tk, Dk], Hq a multiple of Hkv (grouped-query attention).
      v: [B, Hkv, Tk, Dv].
        q, k and v may each have any of those dtypes (e.g. float32 q with a
        bfloat16 k/v cache): they are read as they are, the arithmetic is
        float32, and a float16/bfloat16 output is rounded (to nearest even)
        once, at the end.
      mask: None, or bool (True = keep) or float32 (added to the scaled
        scores), broadcastable to [B, Hq, Tq, Tk] ([Hq, Tq, Tk] for 3-D).
      causal: None, "top_left" (query i sees keys j <= i) or "bottom_right"
        (j <= i + Tk - Tq).
      window: None, an int w (the pair (w, w)), or (left, right) with None or
        a negative side unbounded: key j is visible only if
        d(i) - left <= j <= d(i) + right, where the diagonal d(i) is i for
        "top_left" and i + Tk - Tq otherwise.
      scale: None for 1/sqrt(Dk), else a nonzero number.
      return_lse: also return lse [B, Hq, Tq], the natural log of each
        row's softmax denominator (-inf for a query that sees no key, whose
        output is 0).
      threads: None for all hardware threads, or a count.
      isa: None for the best available, or a name from available_isas().
      out_dtype: None for q's dtype, else float32 or float16 (np.float16,
        "float16", ...; a NumPy output) or float32, float16 or bfloat16
        (torch.bfloat16, ...; a torch output).
      out: None, or an array of q's type (numpy or torch) and of the
        output's shape, [B, Hq, Tq, Dv] ([Hq, Tq, Dv] for 3-D), any float
        dtype above and any strides, to write the result into instead of
        allocating one (e.g. a slice of a [B, Tq, Hq, Dv] buffer). It must
        not overlap q, k, v or mask.
      bf16_weights: allow P·v on BF16 dot products (SDPA_FLAG_BF16_WEIGHTS):
        with a bfloat16 v on a CPU with AVX512_BF16, the softmax weights are
        rounded to bfloat16 for their product with v, as torch's and
        OpenVINO's bfloat16 attention do; each output element then lies
        within 2**-8 of the largest |v| its query sees of the float32 result.
        Ignored elsewhere.

    Returns:
      out [B, Hq, Tq, Dv] of q's type (numpy or torch) and of out_dtype (the
      caller's `out` itself if given), or (out, lse); lse is always float32.

    Raises:
      SdpaError (a ValueError and a RuntimeError) with the library's message.

    The GIL is released while the kernel runs. No autograd for torch tensors.
    """
    torch = _torch_if_tensor(q)
    ndim = len(q.shape) if hasattr(q, "shape") else 0
    if ndim not in (3, 4):
        raise invalid(
            "q must be 4-D [batch, heads, seq, dim] or 3-D [heads, seq, dim], "
            "got shape %s" % (list(getattr(q, "shape", [])),)
        )
    views = {}
    for name, x in (("q", q), ("k", k), ("v", v)):
        view = _view(name, x)
        if len(x.shape) != ndim:
            raise invalid(
                "q, k and v must have the same number of dimensions; q is "
                "%d-D, %s is %d-D" % (ndim, name, len(x.shape))
            )
        views[name] = _as_4d(view, ndim)

    batch, q_heads, q_len, _ = views["q"].tensor.shape
    k_len = views["k"].tensor.shape[2]
    value_dim = views["v"].tensor.shape[3]

    mask_view = None
    if mask is not None:
        full = (batch, q_heads, q_len, k_len)[4 - ndim :]
        broadcast = _broadcast_mask(mask, full)
        mask_view = _as_4d(_view("mask", broadcast, allow_bool=True), ndim)

    causal_value = _CAUSAL.get(causal) if isinstance(causal, (str, type(None))) else None
    if causal_value is None:
        raise invalid(
            "causal must be None, 'top_left' or 'bottom_right', got %r" % (causal,)
        )
    window_left, window_right = _window(window)
    scale_value = _scale(scale)

    out_shape = (batch, q_heads, q_len, value_dim)
    lse_shape = (batch, q_heads, q_len)
    caller_out = out
    if caller_out is not None:
        out_view = _caller_out(caller_out, out_shape[4 - ndim :], torch, out_dtype)
        out_tensor = _as_4d(out_view, ndim).tensor
    else:
        if out_dtype is None:  # q's, which its view accepted
            out_sdpa_dtype, new_dtype = views["q"].tensor.dtype, q.dtype
        else:
            out_name, out_sdpa_dtype = _out_dtype(out_dtype, torch)
            new_dtype = out_name if torch is None else getattr(torch, out_name)
        if torch is not None:
            out = torch.empty(out_shape, dtype=new_dtype)
            out_ptr = out.data_ptr()
        else:
            out = np.empty(out_shape, dtype=new_dtype)
            out_ptr = out.ctypes.data
        out_tensor = _capi.Tensor(
            out_ptr,
            out_sdpa_dtype,
            out_shape,
            (q_heads * q_len * value_dim, q_len * value_dim, value_dim, 1),
        )
    if torch is not None:
        lse = torch.empty(lse_shape, dtype=torch.float32) if return_lse else None
        lse_ptr = lse.data_ptr() if return_lse else None
    else:
        lse = np.empty(lse_shape, dtype=np.float32) if return_lse else None
        lse_ptr = lse.ctypes.data if return_lse else None
    lse_tensor = None
    if return_lse:
        lse_tensor = _capi.Tensor(
            lse_ptr,
            _capi.DTYPE_F32,
            lse_shape + (1,),
            (q_heads * q_len, q_len, 1, 1),
        )

    args = _capi.AttentionArgs(
        struct_size=ctypes.sizeof(_capi.AttentionArgs),
        q=views["q"].pointer(),
        k=views["k"].pointer(),
        v=views["v"].pointer(),
        out=ctypes.pointer(out_tensor),
        mask=mask_view.pointer() if mask_view is not None else None,
        lse=ctypes.pointer(lse_tensor) if lse_tensor is not None else None,
        scale=scale_value,
        causal=causal_value,
        window_left=window_left,
        window_right=window_right,
        flags=_capi.FLAG_BF16_WEIGHTS if bf16_weights else 0,
    )

    lib = _capi.library()
    key, context = contexts.acquire(threads, isa)
    try:
        # ctypes.CDLL drops the GIL for the duration of the call.
        status = lib.sdpa_attention(context, ctypes.byref(args))
        check(status)  # same thread, right after: sdpa_last_error is valid
    finally:
        contexts.release(key)

    if caller_out is not None:
        out = caller_out
    elif ndim == 3:
        out = out[0]
    if ndim == 3 and return_lse:
        lse = lse[0]
    return (out, lse) if return_lse else out
