"""sdpa: scaled dot-product attention on CPUs, O = softmax(Q·Kᵀ·scale + mask)·V.

A thin ctypes layer over libsdpa's C API (include/sdpa/sdpa.h): NumPy arrays
and CPU torch tensors of any strides go in without a copy, and the GIL is
released while the kernel runs.

    import numpy as np, sdpa
    q = np.random.randn(2, 8, 128, 64).astype(np.float32)
    out = sdpa.attention(q, q, q, causal="bottom_right")

libsdpa is looked up, in order, at $SDPA_LIBRARY (a full path; when set,
nothing else is tried), next to this package, in the build*/src/ folders of
the source tree this package sits in (newest first), then through
ctypes.util.find_library("sdpa") and the system search path. It is loaded on
first use.
"""

from ._attention import attention
from ._capi import LibraryNotFoundError
from ._runtime import (
    SdpaError,
    available_isas,
    context_info,
    library_path,
    version,
)

__version__ = "0.2.0"

__all__ = [
    "attention",
    "available_isas",
    "context_info",
    "library_path",
    "version",
    "SdpaError",
    "LibraryNotFoundError",
]
