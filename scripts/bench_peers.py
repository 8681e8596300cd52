#!/usr/bin/env python3
"""Times libsdpa next to other CPU attention implementations, same shapes.

    python3 scripts/bench_peers.py                          # all shapes
    python3 scripts/bench_peers.py --filter 'T2048_D128$|Tq1_' --threads 1
    python3 scripts/bench_peers.py --peers torch --min-time 0.5 --rounds 1
    python3 scripts/bench_peers.py --kv-dtype f16 --filter 'Tq'  # F16 KV cache
    python3 scripts/bench_peers.py --dtype bf16 --filter '_T'    # BF16 Q, K, V
    python3 scripts/bench_peers.py --dtype bf16 --bf16-weights   # and BF16 P

Implementations (each skipped with a note when it is not installed):
  sdpa         libsdpa through the Python package in python/ (or, with
               --ours ctypes or without the package, ctypes on libsdpa.so);
  torch        torch.nn.functional.scaled_dot_product_attention,
               torch.set_num_threads(n)            (pip install torch);
  onnxruntime  the ONNX opset-23 Attention op, or com.microsoft
               MultiHeadAttention where the installed onnxruntime lacks it,
               intra_op_num_threads=n              (pip install onnxruntime onnx);
  openvino     opset13 ScaledDotProductAttention on the CPU plugin,
               INFERENCE_NUM_THREADS=n, f32 precision (pip install openvino);
  ggml         ggml_flash_attn_ext, llama.cpp's attention, F32 (or with
               --kv-dtype f16, F16) K/V and F32 precision, on a ggml
               threadpool of n threads (pip install ggml-python, which
               builds ggml for the host's CPU).

With --dtype bf16, Q, K and V are BF16 (the same values, rounded, for all):
sdpa takes them as torch tensors and writes f32, torch computes in bf16,
OpenVINO gets the rounded values in f32 with INFERENCE_PRECISION_HINT bf16
(its bf16 kernels); ONNX Runtime and ggml are skipped.

The shapes are sdpa_bench's (benchmarks/shapes.cc), inputs float32 BHSD in
[-1, 1), the same in every implementation. Each implementation runs in its
own process, so no thread pool spins beside another's. Every one is checked
once against sdpa's output (a few sampled rows): a mismatch is reported, as
it means the two did not compute the same attention (e.g. a different causal
alignment). Times are medians of calls after one warm-up call, input
conversion excluded.

The implementations take turns, --rounds times (default 3): sdpa, each
peer, sdpa, each peer, ... A shared or virtual host drifts by several per
cent over minutes; one process after another would put that drift into the
ratios (sequential runs on one host put torch's decode at 0.96x, 1.03x and
1.08x of sdpa's). Each figure is the implementation's median round, and the
ratio's range over the rounds (each round's peer / the same round's sdpa,
measured minutes apart at most) is given next to it.

GFLOP/s = 2*(Dk+Dv)*B*Hq*visible_pairs / time, as in sdpa_bench. The table
gives each peer's GFLOP/s and its ratio to sdpa's (peer / sdpa: below 1
means sdpa is faster). Written to --out-dir: sdpa_peers.json, sdpa_peers.md.
Peers never run in CI: this script is for people.
"""

import argparse
import ctypes
import glob
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = ["torch", "onnxruntime", "openvino", "ggml"]
F16_KV = ["sdpa", "ggml"]  # take F16 K/V with F32 queries (--kv-dtype f16)
BF16 = ["sdpa", "torch", "openvino"]  # run BF16 Q, K, V (--dtype bf16)
INSTALL_HINT = {
    "torch": "pip install torch",
    "onnxruntime": "pip install onnxruntime onnx",
    "openvino": "pip install openvino",
    "ggml": "pip install ggml-python",
}
NONE, TOP_LEFT, BOTTOM_RIGHT = 0, 1, 2


# ---------------------------------------------------------------- shapes ---
# Mirrors benchmarks/shapes.cc: same names, same order.


def _shape(hq, hkv, tq, tk, dk, dv, causal, decode):
    heads = "H%d" % hq if hq == hkv else "Hq%d_Hkv%d" % (hq, hkv)
    lengths = "T%d" % tq if tq == tk else "Tq%d_Tk%d" % (tq, tk)
    dims = "D%d" % dk if dk == dv else "Dk%d_Dv%d" % (dk, dv)
    name = "B1_%s_%s_%s" % (heads, lengths, dims)
    name += {NONE: "", TOP_LEFT: "_causal_tl", BOTTOM_RIGHT: "_causal_br"}[causal]
    return dict(name=name, b=1, hq=hq, hkv=hkv, tq=tq, tk=tk, dk=dk, dv=dv,
                causal=causal, decode=decode)


def all_shapes():
    shapes = []
    for t in (512, 2048, 4096, 8192):
        for d in (64, 128):
            shapes.append(_shape(8, 8, t, t, d, d, NONE, False))
            shapes.append(_shape(8, 8, t, t, d, d, TOP_LEFT, False))
            shapes.append(_shape(8, 8, t // 2, t, d, d, BOTTOM_RIGHT, False))
    shapes.append(_shape(32, 8, 2048, 2048, 128, 128, NONE, False))
    shapes.append(_shape(8, 8, 2048, 2048, 192, 128, NONE, False))
    for tk in (4096, 32768):
        for tq in (1, 8):
            shapes.append(_shape(32, 32, tq, tk, 128, 128, NONE, True))
    for tk in (4096, 32768):
        shapes.append(_shape(32, 8, 1, tk, 128, 128, NONE, True))
    return shapes


def visible_pairs(s):
    """(query, key) pairs one head sees under the causal rule of sdpa.h."""
    if s["causal"] == NONE:
        return s["tq"] * s["tk"]
    offset = 0 if s["causal"] == TOP_LEFT else s["tk"] - s["tq"]
    return sum(min(max(i + offset + 1, 0), s["tk"]) for i in range(s["tq"]))


def useful_flops(s):
    # 2*Dk flops for a score, 2*Dv for accumulating its value row.
    return 2.0 * (s["dk"] + s["dv"]) * s["b"] * s["hq"] * visible_pairs(s)


def keep_mask(s):
    """Bool [Tq, Tk], True = visible, for implementations that need one."""
    import numpy as np

    offset = 0 if s["causal"] == TOP_LEFT else s["tk"] - s["tq"]
    return np.tril(np.ones((s["tq"], s["tk"]), dtype=bool), k=offset)


def make_inputs(s, kv_dtype="f32", dtype="f32"):
    import numpy as np

    rng = np.random.default_rng(20240531)

    def uniform(*shape):
        return rng.random(shape, dtype=np.float32) * 2 - 1

    q = uniform(s["b"], s["hq"], s["tq"], s["dk"])
    k = uniform(s["b"], s["hkv"], s["tk"], s["dk"])
    v = uniform(s["b"], s["hkv"], s["tk"], s["dv"])
    if kv_dtype == "f16":  # a half-precision KV cache, queries in f32
        k, v = k.astype(np.float16), v.astype(np.float16)
    if dtype == "bf16":  # f32 arrays of BF16 values (round to nearest even)
        q, k, v = (_round_to_bf16(a) for a in (q, k, v))
    return q, k, v


def _round_to_bf16(a):
    import numpy as np

    bits = a.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    return bits.astype(np.uint32).view(np.float32)


# --------------------------------------------------------- implementations -
# prepare_<name>(shape, threads, q, k, v) -> (call, version): call() runs one
# attention and returns the output as a NumPy array [B, Hq, Tq, Dv].


def _find_libsdpa(explicit):
    if explicit:
        return explicit
    if os.environ.get("SDPA_LIBRARY"):
        return os.environ["SDPA_LIBRARY"]
    found = glob.glob(os.path.join(ROOT, "build*", "src", "libsdpa.so"))
    if not found:
        raise RuntimeError(
            "libsdpa.so not found: build it (cmake --build build) or pass "
            "--library / set SDPA_LIBRARY"
        )
    return max(found, key=os.path.getmtime)


class _CTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int),
        ("shape", ctypes.c_int64 * 4),
        ("strides", ctypes.c_int64 * 4),
    ]


class _CArgs(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("q", ctypes.POINTER(_CTensor)),
        ("k", ctypes.POINTER(_CTensor)),
        ("v", ctypes.POINTER(_CTensor)),
        ("out", ctypes.POINTER(_CTensor)),
        ("mask", ctypes.POINTER(_CTensor)),
        ("lse", ctypes.POINTER(_CTensor)),
        ("scale", ctypes.c_float),
        ("causal", ctypes.c_int),
        ("window_left", ctypes.c_int64),
        ("window_right", ctypes.c_int64),
    ]


class _COptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("num_threads", ctypes.c_int32),
        ("isa", ctypes.c_uint64),
    ]


def _prepare_sdpa_ctypes(s, threads, q, k, v, library):
    """The C API straight from ctypes, output preallocated: what a C caller
    pays, nothing more."""
    import numpy as np

    path = _find_libsdpa(library)
    lib = ctypes.CDLL(path)
    lib.sdpa_context_create.argtypes = [
        ctypes.POINTER(_COptions),
        ctypes.POINTER(ctypes.c_void_p),
    ]
    lib.sdpa_attention.argtypes = [ctypes.c_void_p, ctypes.POINTER(_CArgs)]
    lib.sdpa_last_error.restype = ctypes.c_char_p
    options = _COptions(ctypes.sizeof(_COptions), threads, 0)
    context = ctypes.c_void_p()
    if lib.sdpa_context_create(ctypes.byref(options), ctypes.byref(context)):
        raise RuntimeError(lib.sdpa_last_error().decode())
    out = np.empty((s["b"], s["hq"], s["tq"], s["dv"]), dtype=np.float32)

    def tensor(a):
        strides = [x // a.itemsize for x in a.strides]
        dtype = {np.float32: 0, np.float16: 2}[a.dtype.type]  # sdpa_dtype
        return _CTensor(a.ctypes.data, dtype, (ctypes.c_int64 * 4)(*a.shape),
                        (ctypes.c_int64 * 4)(*strides))

    tensors = [tensor(a) for a in (q, k, v, out)]
    args = _CArgs(ctypes.sizeof(_CArgs), *[ctypes.pointer(t) for t in tensors],
                  None, None, 0.0, s["causal"], -1, -1)

    def call():
        if lib.sdpa_attention(context, ctypes.byref(args)):
            raise RuntimeError(lib.sdpa_last_error().decode())
        return out

    version = lib.sdpa_version()
    return call, "libsdpa %d.%d.%d (ctypes, %s)" % (
        version >> 16, (version >> 8) & 255, version & 255, path)


def prepare_sdpa(s, threads, q, k, v, ours="auto", library=None, dtype="f32",
                 bf16_weights=False):
    if dtype == "bf16":
        return _prepare_sdpa_bf16(s, threads, q, k, v, library, bf16_weights)
    if ours != "ctypes":
        sys.path.insert(0, os.path.join(ROOT, "python"))
        try:
            import sdpa
        except ImportError:
            if ours == "package":
                raise
            sdpa = None
        if sdpa is not None:
            if library:
                os.environ.setdefault("SDPA_LIBRARY", library)
            causal = {NONE: None, TOP_LEFT: "top_left", BOTTOM_RIGHT: "bottom_right"}
            mode = causal[s["causal"]]

            def call():
                return sdpa.attention(q, k, v, causal=mode, threads=threads)

            return call, "sdpa %s (python package, %s)" % (
                sdpa.__version__, sdpa.library_path())
    return _prepare_sdpa_ctypes(s, threads, q, k, v, library)


def _prepare_sdpa_bf16(s, threads, q, k, v, library, bf16_weights):
    """BF16 torch tensors through the Python package, f32 output; with
    bf16_weights, SDPA_FLAG_BF16_WEIGHTS (P·V on BF16 dot products)."""
    import torch

    sys.path.insert(0, os.path.join(ROOT, "python"))
    import sdpa

    if library:
        os.environ.setdefault("SDPA_LIBRARY", library)
    causal = {NONE: None, TOP_LEFT: "top_left", BOTTOM_RIGHT: "bottom_right"}
    mode = causal[s["causal"]]
    tq, tk, tv = (torch.from_numpy(a).to(torch.bfloat16) for a in (q, k, v))
    out = torch.empty(s["b"], s["hq"], s["tq"], s["dv"], dtype=torch.float32)

    def call():
        return sdpa.attention(tq, tk, tv, causal=mode, threads=threads, out=out,
                              bf16_weights=bf16_weights)

    return call, "sdpa %s (python package, bf16 torch tensors%s, %s)" % (
        sdpa.__version__, ", bf16_weights=True" if bf16_weights else "",
        sdpa.library_path())


def prepare_torch(s, threads, q, k, v, dtype="f32", **_):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
    if dtype == "bf16":
        tq, tk, tv = (t.to(torch.bfloat16) for t in (tq, tk, tv))
    kwargs = {}
    if s["hq"] != s["hkv"]:
        kwargs["enable_gqa"] = True
    if s["causal"] == TOP_LEFT:
        kwargs["is_causal"] = True  # torch's is_causal is top-left aligned
    elif s["causal"] == BOTTOM_RIGHT:
        from torch.nn.attention.bias import causal_lower_right

        kwargs["attn_mask"] = causal_lower_right(s["tq"], s["tk"])

    def call():
        with torch.inference_mode():
            return F.scaled_dot_product_attention(tq, tk, tv, **kwargs)

    return call, "torch %s (%s)" % (
        torch.__version__, torch.backends.cpu.get_cpu_capability())


def _onnx_attention23(s):
    """ONNX opset-23 Attention on BHSD inputs: GQA, Dv != Dk, causal."""
    from onnx import TensorProto, helper

    shapes = {
        "Q": [s["b"], s["hq"], s["tq"], s["dk"]],
        "K": [s["b"], s["hkv"], s["tk"], s["dk"]],
        "V": [s["b"], s["hkv"], s["tk"], s["dv"]],
    }
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, d)
              for n, d in shapes.items()]
    names = ["Q", "K", "V"]
    # is_causal is top-left aligned; bottom-right goes in as a bool mask.
    if s["causal"] == BOTTOM_RIGHT:
        inputs.append(helper.make_tensor_value_info(
            "M", TensorProto.BOOL, [s["tq"], s["tk"]]))
        names.append("M")
    node = helper.make_node(
        "Attention", names, ["Y"],
        is_causal=int(s["causal"] == TOP_LEFT),
        scale=1.0 / math.sqrt(s["dk"]),
    )
    output = helper.make_tensor_value_info(
        "Y", TensorProto.FLOAT, [s["b"], s["hq"], s["tq"], s["dv"]])
    graph = helper.make_graph([node], "attention", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10
    return model, names


def _onnx_mha(s):
    """com.microsoft MultiHeadAttention: Q/K/V as [B, T, H*D], causal masks
    as an additive attention_bias. No GQA."""
    from onnx import TensorProto, helper

    if s["hq"] != s["hkv"]:
        raise RuntimeError("MultiHeadAttention has no grouped-query attention")
    b, h = s["b"], s["hq"]
    inputs = [
        helper.make_tensor_value_info("Q", TensorProto.FLOAT, [b, s["tq"], h * s["dk"]]),
        helper.make_tensor_value_info("K", TensorProto.FLOAT, [b, s["tk"], h * s["dk"]]),
        helper.make_tensor_value_info("V", TensorProto.FLOAT, [b, s["tk"], h * s["dv"]]),
    ]
    names = ["Q", "K", "V"]
    if s["causal"] != NONE:
        # Inputs 3-4 (bias, key_padding_mask) are absent; 5 is attention_bias.
        inputs.append(helper.make_tensor_value_info(
            "M", TensorProto.FLOAT, [1, 1, s["tq"], s["tk"]]))
        names += ["", "", "M"]
    node = helper.make_node(
        "MultiHeadAttention", names, ["Y"], domain="com.microsoft",
        num_heads=h, scale=1.0 / math.sqrt(s["dk"]),
    )
    output = helper.make_tensor_value_info(
        "Y", TensorProto.FLOAT, [b, s["tq"], h * s["dv"]])
    graph = helper.make_graph([node], "mha", inputs, [output])
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model, [n for n in names if n]


def prepare_onnxruntime(s, threads, q, k, v, **_):
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        model, names = _onnx_attention23(s)
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        op = "opset-23 Attention"
        feeds = {"Q": q, "K": k, "V": v}
        if "M" in names:
            feeds["M"] = keep_mask(s)
        out = np.empty((s["b"], s["hq"], s["tq"], s["dv"]), dtype=np.float32)
        unpack = lambda y: y  # noqa: E731
    except Exception as error:  # an onnxruntime without the opset-23 kernel
        first_error = error
        try:
            model, names = _onnx_mha(s)
            session = ort.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
        except Exception as error2:
            raise RuntimeError("Attention-23: %s; MultiHeadAttention: %s"
                               % (first_error, error2))
        op = "com.microsoft MultiHeadAttention"
        bshd = lambda a: np.ascontiguousarray(  # noqa: E731
            a.transpose(0, 2, 1, 3).reshape(a.shape[0], a.shape[2], -1))
        feeds = {"Q": bshd(q), "K": bshd(k), "V": bshd(v)}
        if "M" in names:
            feeds["M"] = np.where(keep_mask(s), 0.0, -np.inf).astype(
                np.float32)[None, None]
        out = np.empty((s["b"], s["tq"], s["hq"] * s["dv"]), dtype=np.float32)
        unpack = lambda y: y.reshape(  # noqa: E731
            s["b"], s["tq"], s["hq"], s["dv"]).transpose(0, 2, 1, 3)
    # Inputs bound once and the output preallocated: no copies per call.
    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array))
    binding.bind_output("Y", "cpu", 0, np.float32, list(out.shape), out.ctypes.data)

    def call():
        session.run_with_iobinding(binding)
        return unpack(out)

    return call, "onnxruntime %s (%s)" % (ort.__version__, op)


def prepare_openvino(s, threads, q, k, v, dtype="f32", **_):
    import numpy as np
    import openvino as ov

    try:
        import openvino.opset13 as ops
    except ImportError:  # OpenVINO before 2025
        import openvino.runtime.opset13 as ops
    b, hq, hkv, tq, tk = s["b"], s["hq"], s["hkv"], s["tq"], s["tk"]
    group = hq // hkv
    # Grouped-query attention through broadcasting: queries as
    # [B, Hkv, group, Tq, Dk] against K/V [B, Hkv, 1, Tk, D]; same memory.
    q_in = q.reshape(b, hkv, group, tq, s["dk"])
    k_in = k.reshape(b, hkv, 1, tk, s["dk"])
    v_in = v.reshape(b, hkv, 1, tk, s["dv"])
    params = [ops.parameter(list(a.shape), np.float32, name=n)
              for n, a in (("Q", q_in), ("K", k_in), ("V", v_in))]
    scale = ops.constant(np.float32(1.0 / math.sqrt(s["dk"])))
    if s["causal"] == BOTTOM_RIGHT:  # causal=True is top-left aligned
        mask = ops.constant(keep_mask(s))
        node = ops.scaled_dot_product_attention(*params, attention_mask=mask, scale=scale)
    else:
        zero = ops.constant(np.float32(0))  # scale is the 5th input
        node = ops.scaled_dot_product_attention(
            *params, attention_mask=zero, scale=scale,
            causal=s["causal"] == TOP_LEFT)
    model = ov.Model([node], params, "attention")
    core = ov.Core()
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_NUM_THREADS": threads,
        # The CPU plugin would otherwise run bf16 on CPUs with bf16 units:
        # only where asked (--dtype bf16).
        "INFERENCE_PRECISION_HINT": dtype,
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
    })
    request = compiled.create_infer_request()
    for i, array in enumerate((q_in, k_in, v_in)):
        request.set_input_tensor(i, ov.Tensor(array, shared_memory=True))

    def call():
        request.infer()
        return request.get_output_tensor(0).data.reshape(b, hq, tq, s["dv"])

    return call, "openvino %s (opset13 ScaledDotProductAttention)" % ov.__version__


class _GgmlAttention:
    """One ggml graph holding one ggml_flash_attn_ext node over the NumPy
    arrays in place, computed on a threadpool made once (as llama.cpp
    does); the pool and the context are freed with the object."""

    def __init__(self, s, threads, q, k, v):
        import numpy as np
        import ggml

        self.ggml = ggml
        params = ggml.ggml_init_params(mem_size=1 << 20, mem_buffer=None,
                                       no_alloc=True)
        self.context = ggml.ggml_init(params)
        self.pool = None
        # ggml shapes run fastest dimension first: BHSD [B, H, T, D] is
        # ne = [D, T, H, B], the layout ggml_flash_attn_ext takes for
        # q, k and v (K/V heads may divide the query heads: GQA).
        self.keep = [q, k, v]
        types = {np.float32: ggml.GGML_TYPE_F32, np.float16: ggml.GGML_TYPE_F16}
        tensors = [self._tensor(types[a.dtype.type], a) for a in (q, k, v)]
        mask = None
        if s["causal"] != NONE:
            # An additive F16 mask [Tq, Tk] (ne = [Tk, Tq]), 0 or -inf.
            bias = np.where(keep_mask(s), 0.0, -np.inf).astype(np.float16)
            self.keep.append(bias)
            mask = self._tensor(ggml.GGML_TYPE_F16, bias)
        node = ggml.ggml_flash_attn_ext(self.context, *tensors, mask,
                                        1.0 / math.sqrt(s["dk"]), 0.0, 0.0)
        ggml.ggml_flash_attn_ext_set_prec(node, ggml.GGML_PREC_F32)
        # The result is [B, Tq, Hq, Dv] (ne = [Dv, Hq, Tq, B]).
        self.out = np.empty((s["b"], s["tq"], s["hq"], s["dv"]), dtype=np.float32)
        node.contents.data = ctypes.c_void_p(self.out.ctypes.data)
        self.graph = ggml.ggml_new_graph(self.context)
        ggml.ggml_build_forward_expand(self.graph, node)
        pool_params = ggml.ggml_threadpool_params_default(threads)
        self.pool = ggml.ggml_threadpool_new(ctypes.byref(pool_params))
        self.plan = ggml.ggml_graph_plan(self.graph, threads, self.pool)
        # ggml's per-thread scratch lies in the work buffer: 16 bytes off a
        # cache line (malloc's alignment) ran T2048 D128 at 84-87 GFLOP/s,
        # line-aligned at 115-131 here. Aligned: the peer at its best.
        size = max(self.plan.work_size, 1)
        self.work = np.empty(size + 64, dtype=np.uint8)
        start = -self.work.ctypes.data % 64
        self.plan.work_data = self.work[start:start + size].ctypes.data_as(
            ctypes.POINTER(ctypes.c_uint8))

    def _tensor(self, dtype, array):
        tensor = self.ggml.ggml_new_tensor_4d(
            self.context, dtype, *reversed((1,) * (4 - array.ndim) + array.shape))
        tensor.contents.data = ctypes.c_void_p(array.ctypes.data)
        return tensor

    def __call__(self):
        status = self.ggml.ggml_graph_compute(self.graph, ctypes.byref(self.plan))
        if status != 0:
            raise RuntimeError("ggml_graph_compute returned status %d" % status)
        return self.out.transpose(0, 2, 1, 3)

    def __del__(self):
        if self.pool:
            self.ggml.ggml_threadpool_free(self.pool)
        self.ggml.ggml_free(self.context)


def prepare_ggml(s, threads, q, k, v, **_):
    import ggml

    call = _GgmlAttention(s, threads, q, k, v)
    return call, "ggml %s (ggml-python %s, ggml_flash_attn_ext)" % (
        ggml.ggml_version().decode(), ggml.__version__)


PREPARE = {
    "sdpa": prepare_sdpa,
    "torch": prepare_torch,
    "onnxruntime": prepare_onnxruntime,
    "openvino": prepare_openvino,
    "ggml": prepare_ggml,
}


# ------------------------------------------------------------------ worker -


def sample_rows(out):
    """First, middle and last query of the first and last head."""
    import numpy as np

    if hasattr(out, "float"):  # a torch tensor, maybe bf16
        out = out.float().numpy()
    out = np.asarray(out)
    tq = out.shape[2]
    rows = []
    for h in (0, out.shape[1] - 1):
        for i in sorted({0, tq // 2, tq - 1}):
            rows.append([float(x) for x in out[0, h, i]])
    return rows


def time_calls(call, min_time, min_calls=3):
    times = []
    while len(times) < min_calls or sum(times) < min_time:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times)


def worker(args):
    """Runs one implementation over the shapes and thread counts; prints one
    JSON object per line."""
    shapes = [s for s in all_shapes() if re.search(args.filter, s["name"])]
    threads_list = [int(t) for t in args.threads.split(",")]
    prepare = PREPARE[args.worker]
    for s in shapes:
        q, k, v = make_inputs(s, args.kv_dtype, args.dtype)
        for threads in threads_list:
            record = {"impl": args.worker, "shape": s["name"], "threads": threads}
            try:
                call, version = prepare(s, threads, q, k, v, ours=args.ours,
                                        library=args.library, dtype=args.dtype,
                                        bf16_weights=args.bf16_weights)
                record["version"] = version
                record["rows"] = sample_rows(call())  # warm-up and check
                seconds, calls = time_calls(call, args.min_time)
                record["seconds"] = seconds
                record["calls"] = calls
                record["gflops"] = useful_flops(s) / seconds * 1e-9
            except Exception as error:  # reported, the others still run
                record["error"] = "%s: %s" % (type(error).__name__, error)
            print(json.dumps(record), flush=True)
            call = None


# ------------------------------------------------------------------ parent -


def available(name):
    if name == "sdpa":
        return None
    modules = {"torch": ["torch"], "onnxruntime": ["onnxruntime", "onnx"],
               "openvino": ["openvino"], "ggml": ["ggml"]}
    for module in modules[name]:
        probe = subprocess.run([sys.executable, "-c", "import " + module],
                               capture_output=True)
        if probe.returncode != 0:
            return "not installed (%s)" % INSTALL_HINT[name]
    return None


def run_worker(name, args, threads_text):
    command = [sys.executable, os.path.abspath(__file__), "--worker", name,
               "--filter", args.filter, "--threads", threads_text,
               "--min-time", str(args.min_time), "--ours", args.ours,
               "--kv-dtype", args.kv_dtype, "--dtype", args.dtype]
    if args.library:
        command += ["--library", args.library]
    if args.bf16_weights:
        command.append("--bf16-weights")
    print("== %s" % name, flush=True)
    records = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        try:
            record = json.loads(line)
        except ValueError:
            print(line, end="")
            continue
        records.append(record)
        if "error" in record:
            status = "error: " + record["error"]
        else:
            status = "%.4g s, %.1f GFLOP/s" % (record["seconds"], record["gflops"])
        print("  %s threads:%d  %s" % (record["shape"], record["threads"], status),
              flush=True)
    if process.wait() != 0:
        records.append({"impl": name, "shape": "*", "threads": 0,
                        "error": "worker exited with status %d" % process.returncode})
    return records


def merge_rounds(rounds):
    """One record per (impl, shape, threads) from each round's records:
    the round with the median time (the faster of the two middle ones for an
    even count), its GFLOP/s in every round, in round order, under
    'round_gflops'. A failure in any round is the result."""
    groups, order = {}, []
    for records in rounds:
        for r in records:
            key = (r["impl"], r["shape"], r["threads"])
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(r)
    merged = []
    for key in order:
        group = groups[key]
        failed = [r for r in group if "error" in r]
        if failed:
            merged.append(failed[0])
            continue
        by_time = sorted(group, key=lambda r: r["seconds"])
        median = dict(by_time[(len(by_time) - 1) // 2])
        median["round_gflops"] = [r["gflops"] for r in group]
        merged.append(median)
    return merged


def ratio_range(peer, ours):
    """Min and max over the rounds of peer / sdpa in the same round, or None
    with one round (or rounds that do not pair up)."""
    a, b = peer.get("round_gflops", []), ours.get("round_gflops", [])
    if len(a) < 2 or len(a) != len(b) or not all(b):
        return None
    ratios = [x / y for x, y in zip(a, b)]
    return min(ratios), max(ratios)


def max_difference(rows, reference):
    if rows is None or reference is None:
        return None
    return max(abs(a - b) for r1, r2 in zip(rows, reference) for a, b in zip(r1, r2))


def markdown(records, impls, skipped, kv_dtype="f32", dtype="f32"):
    by_key = {(r["impl"], r["shape"], r["threads"]): r for r in records}
    lines = ["# libsdpa and its peers", ""]
    if kv_dtype != "f32":
        lines += ["K and V in %s, Q and the output in f32." % kv_dtype, ""]
    if dtype != "f32":
        lines += ["Q, K and V in %s (the same rounded values for every "
                  "implementation); libsdpa writes f32." % dtype, ""]
    versions = {}
    for r in records:
        if "version" in r:
            versions.setdefault(r["impl"], r["version"])
    for impl in impls:
        lines.append("- %s: %s" % (impl, versions.get(impl, skipped.get(impl, "no result"))))
    lines.append("")
    lines.append(
        "GFLOP/s counts 2·(Dk+Dv) flops per visible (query, key) pair; a "
        "peer's cell is `GFLOP/s (peer / sdpa)`, so below 1 means libsdpa is "
        "faster. `max|Δ|` is the largest difference from libsdpa's output on "
        "the sampled rows. Medians of calls after a warm-up."
    )
    if any(len(r.get("round_gflops", [])) > 1 for r in records):
        lines[-1] += (
            " The implementations took turns, %d rounds; each figure is its "
            "median round, and `lo-hi` the range of the round-by-round ratio."
            % max(len(r.get("round_gflops", [])) for r in records))
    lines.append("")
    peers = [i for i in impls if i != "sdpa"]
    header = "| shape | threads | sdpa GFLOP/s |"
    rule = "|---|---:|---:|"
    for p in peers:
        header += " %s | max\\|Δ\\| |" % p
        rule += "---:|---:|"
    lines += [header, rule]
    shapes, seen = [], set()
    for r in records:
        key = (r["shape"], r["threads"])
        if r["shape"] != "*" and key not in seen:
            seen.add(key)
            shapes.append(key)
    for shape, threads in shapes:
        ours = by_key.get(("sdpa", shape, threads), {})
        cells = ["error" if "error" in ours else "%.1f" % ours["gflops"]
                 if "gflops" in ours else ""]
        for p in peers:
            r = by_key.get((p, shape, threads))
            if r is None:
                cells += ["", ""]
            elif "error" in r:
                cells += ["error", ""]
            else:
                ratio = r["gflops"] / ours["gflops"] if ours.get("gflops") else None
                text = "%.2f" % ratio if ratio else "?"
                spread = ratio_range(r, ours) if ratio else None
                if spread:
                    text += ", %.2f-%.2f" % spread
                cells.append("%.1f (%s)" % (r["gflops"], text))
                diff = max_difference(r.get("rows"), ours.get("rows"))
                cells.append("" if diff is None else "%.1e" % diff)
        lines.append("| %s | %d | %s |" % (shape, threads, " | ".join(cells)))
    errors = [r for r in records if "error" in r]
    if errors:
        lines += ["", "Errors:", ""]
        for r in errors:
            lines.append("- %s %s threads:%s: %s" % (
                r["impl"], r["shape"], r["threads"], r["error"]))
    return "\n".join(lines) + "\n"


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--filter", default="",
                        help="regular expression on shape names (B1_H8_T2048_D128, ...)")
    parser.add_argument("--threads", default="1,all",
                        help="comma-separated thread counts; 'all' = os.cpu_count() "
                        "(default 1,all)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="comma-separated subset of %s" % ",".join(PEERS))
    parser.add_argument("--rounds", type=int, default=3,
                        help="times the implementations take turns; figures "
                        "are medians over the rounds (default 3)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds of timed calls per measurement (at least 3 calls)")
    parser.add_argument("--ours", choices=["auto", "package", "ctypes"], default="auto",
                        help="libsdpa through the python/ package (auto: when "
                        "importable) or ctypes with a preallocated output")
    parser.add_argument("--library", help="libsdpa.so to use (default: "
                        "$SDPA_LIBRARY, else the newest build*/src/libsdpa.so)")
    parser.add_argument("--kv-dtype", choices=["f32", "f16"], default="f32",
                        help="K and V element type (Q and the output stay "
                        "f32); f16 runs sdpa and ggml only")
    parser.add_argument("--bf16-weights", action="store_true",
                        help="with --dtype bf16: libsdpa may round the softmax "
                        "weights to BF16 for P·V (SDPA_FLAG_BF16_WEIGHTS), as "
                        "torch and OpenVINO's bf16 mode do")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                        help="Q, K and V element type; bf16 runs sdpa, torch "
                        "and openvino only")
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "out", "bench"))
    parser.add_argument("--worker", choices=sorted(PREPARE), help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.worker:
        worker(args)
        return 0
    if args.bf16_weights and args.dtype != "bf16":
        print("--bf16-weights needs --dtype bf16")
        return 1
    threads = []
    for t in args.threads.split(","):
        n = (os.cpu_count() or 1) if t.strip() == "all" else int(t)
        if n not in threads:
            threads.append(n)
    threads_text = ",".join(str(t) for t in threads)
    if not [s for s in all_shapes() if re.search(args.filter, s["name"])]:
        print("--filter %r matches no shape" % args.filter)
        return 1
    impls = ["sdpa"] + [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in impls:
        if p not in PREPARE:
            print("unknown peer %r (known: %s)" % (p, ", ".join(PEERS)))
            return 1
    if args.rounds < 1:
        print("--rounds must be at least 1")
        return 1
    runnable, skipped = [], {}
    for impl in impls:
        missing = available(impl)
        if not missing and args.kv_dtype != "f32" and impl not in F16_KV:
            missing = "F32 K/V only here (its API takes Q, K, V of one type)"
        if not missing and args.dtype != "f32" and impl not in BF16:
            missing = "F32 only here"
        if missing:
            print("== %s: %s" % (impl, missing))
            skipped[impl] = missing
            continue
        runnable.append(impl)
    rounds = []
    for round_index in range(args.rounds):
        if args.rounds > 1:
            print("-- round %d of %d" % (round_index + 1, args.rounds), flush=True)
        rounds.append([record for impl in runnable
                       for record in run_worker(impl, args, threads_text)])
    records = merge_rounds(rounds)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "sdpa_peers.json"), "w") as f:
        json.dump({"records": records, "skipped": skipped}, f, indent=1)
    text = markdown(records, impls, skipped, args.kv_dtype, args.dtype)
    if args.bf16_weights:
        text = text.replace(
            "libsdpa writes f32.",
            "libsdpa writes f32 and may round the softmax weights to BF16 for "
            "P·V (bf16_weights=True, SDPA_FLAG_BF16_WEIGHTS).", 1)
    md_path = os.path.join(args.out_dir, "sdpa_peers.md")
    with open(md_path, "w") as f:
        f.write(text)
    print()
    print(text)
    print("wrote %s and sdpa_peers.json" % md_path)
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
