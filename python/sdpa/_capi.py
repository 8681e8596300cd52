"""ctypes mirror of include/sdpa/sdpa.h, and finding and loading libsdpa.

Nothing here knows NumPy or torch: this module is the C API spelled in
ctypes, plus the search for the shared library. The structs must match the
header field for field; new fields are only ever appended there, and
``struct_size`` tells the library how many of them we know.
"""

import ctypes
import ctypes.util
import glob
import os
import sys
import threading

# sdpa_status
OK = 0
ERROR_INVALID_ARGUMENT = 1
ERROR_UNSUPPORTED = 2
ERROR_OUT_OF_MEMORY = 3
ERROR_INTERNAL = 4

# sdpa_dtype
DTYPE_F32 = 0
DTYPE_BF16 = 1
DTYPE_F16 = 2
DTYPE_BOOL = 3

# sdpa_causal
CAUSAL_NONE = 0
CAUSAL_TOP_LEFT = 1
CAUSAL_BOTTOM_RIGHT = 2

# The version these bindings were written against (SDPA_VERSION_* of
# sdpa.h). A library with another major, or an older minor, has a different
# ABI or lacks something used here.
BINDINGS_VERSION = (0, 1, 0)


class Tensor(ctypes.Structure):
    """sdpa_tensor: a strided 4-D view; shape and strides in elements."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int),  # sdpa_dtype (a C enum: int-sized)
        ("shape", ctypes.c_int64 * 4),
        ("strides", ctypes.c_int64 * 4),
    ]


class AttentionArgs(ctypes.Structure):
    """sdpa_attention_args."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("q", ctypes.POINTER(Tensor)),
        ("k", ctypes.POINTER(Tensor)),
        ("v", ctypes.POINTER(Tensor)),
        ("out", ctypes.POINTER(Tensor)),
        ("mask", ctypes.POINTER(Tensor)),
        ("lse", ctypes.POINTER(Tensor)),
        ("scale", ctypes.c_float),
        ("causal", ctypes.c_int),  # sdpa_causal
        ("window_left", ctypes.c_int64),
        ("window_right", ctypes.c_int64),
        ("flags", ctypes.c_uint32),  # since 0.2
    ]


FLAG_BF16_WEIGHTS = 1 << 0  # SDPA_FLAG_BF16_WEIGHTS


class ContextOptions(ctypes.Structure):
    """sdpa_context_options."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("num_threads", ctypes.c_int32),
        ("isa", ctypes.c_uint64),
    ]


_context_p = ctypes.c_void_p  # sdpa_context* is opaque

# name: (restype, argtypes). Every function of sdpa.h marked SDPA_API.
_PROTOTYPES = {
    "sdpa_context_create": (
        ctypes.c_int,
        [ctypes.POINTER(ContextOptions), ctypes.POINTER(_context_p)],
    ),
    "sdpa_context_destroy": (None, [_context_p]),
    "sdpa_context_isa": (ctypes.c_uint64, [_context_p]),
    "sdpa_context_num_threads": (ctypes.c_int32, [_context_p]),
    "sdpa_default_context": (_context_p, []),
    "sdpa_attention": (ctypes.c_int, [_context_p, ctypes.POINTER(AttentionArgs)]),
    "sdpa_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    "sdpa_last_error": (ctypes.c_char_p, []),
    "sdpa_available_isas": (ctypes.c_uint64, []),
    "sdpa_isa_name": (ctypes.c_char_p, [ctypes.c_uint64]),
    "sdpa_version": (ctypes.c_uint32, []),
}


class LibraryNotFoundError(ImportError):
    """libsdpa could not be found or loaded; the message says where we looked."""


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def _shared_library_names():
    if sys.platform == "darwin":
        return ["libsdpa.dylib", "libsdpa.0.dylib"]
    if sys.platform == "win32":
        return ["sdpa.dll"]
    return ["libsdpa.so", "libsdpa.so.0"]


def _source_tree_builds():
    """libsdpa in build trees of the source checkout this package sits in.

    Only when the package is python/sdpa of an sdpa checkout (the repository
    root holds include/sdpa/sdpa.h): then <root>/build*/src/ (or one level
    deeper, as scripts/test.sh's build-test/release/src/) is where CMake puts
    the library. Newest first, so the tree just rebuilt wins.
    """
    root = os.path.dirname(os.path.dirname(_package_dir()))
    if not os.path.isfile(os.path.join(root, "include", "sdpa", "sdpa.h")):
        return []
    found = []
    for name in _shared_library_names():
        for pattern in (("build*", "src"), ("build*", "*", "src")):
            found += glob.glob(os.path.join(root, *pattern, name))
    found.sort(key=os.path.getmtime, reverse=True)
    return found


def _candidates():
    """(description, path or name or None) pairs in lookup order."""
    env = os.environ.get("SDPA_LIBRARY")
    if env:
        # An explicit choice is final: falling back to some other library
        # would hide a typo.
        return [("$SDPA_LIBRARY", env)]
    out = []
    for folder in (_package_dir(), os.path.dirname(_package_dir())):
        for name in _shared_library_names():
            out.append(("next to the package", os.path.join(folder, name)))
    for path in _source_tree_builds():
        out.append(("source-tree build", path))
    found = ctypes.util.find_library("sdpa")
    out.append(("ctypes.util.find_library('sdpa')", found))  # None: nothing
    for name in _shared_library_names():
        out.append(("system search path (dlopen)", name))
    return out


def _check_symbols_and_version(lib, where):
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise LibraryNotFoundError(
                "%s does not export %s: it is older than these bindings or "
                "an incomplete build" % (where, name)
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes
    packed = lib.sdpa_version()
    version = (packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF)
    if version[0] != BINDINGS_VERSION[0] or version[:2] < BINDINGS_VERSION[:2]:
        raise LibraryNotFoundError(
            "%s is libsdpa %d.%d.%d; these bindings need %d.%d.x or a later "
            "minor version" % ((where,) + version + BINDINGS_VERSION[:2])
        )


def _load():
    tried = []
    for how, path in _candidates():
        if path is None:
            tried.append("%s: found nothing" % how)
            continue
        is_path = os.sep in path
        if is_path and not os.path.exists(path):
            tried.append("%s: %s (no such file)" % (how, path))
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as error:
            tried.append("%s: %s (%s)" % (how, path, error))
            continue
        # A library that loads but is wrong is an error, not a reason to try
        # the next candidate: the user would not know which one ran.
        _check_symbols_and_version(lib, path)
        lib.sdpa_path = path
        return lib
    raise LibraryNotFoundError(
        "libsdpa could not be loaded. Set SDPA_LIBRARY to the full path of "
        "libsdpa.so (for a CMake build: <build>/src/libsdpa.so), or install "
        "it on the system search path. Looked in:\n  " + "\n  ".join(tried)
    )


_lib = None
_lib_lock = threading.Lock()


def library():
    """The loaded libsdpa (a ctypes.CDLL with prototypes set), loaded on first
    use so that ``import sdpa`` works before the library is built."""
    global _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                _lib = _load()
    return _lib
