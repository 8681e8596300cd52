"""Errors, ISA names, the library version, and the cache of contexts."""

import atexit
import ctypes
import threading

from . import _capi

_STATUS_NAMES = {
    _capi.OK: "ok",
    _capi.ERROR_INVALID_ARGUMENT: "invalid argument",
    _capi.ERROR_UNSUPPORTED: "unsupported",
    _capi.ERROR_OUT_OF_MEMORY: "out of memory",
    _capi.ERROR_INTERNAL: "internal error",
}


class SdpaError(ValueError, RuntimeError):
    """A call was refused or failed.

    Both a ValueError (most failures are bad arguments) and a RuntimeError
    (the rest happen while running), so either ``except`` catches it.

    Attributes:
      status: the sdpa_status value (1 invalid argument, 2 unsupported,
        3 out of memory, 4 internal).
      message: the detail: sdpa_last_error() for failures the library
        reported, our own text for arguments refused before the call.
    """

    def __init__(self, status, message):
        self.status = int(status)
        self.message = message
        self.status_name = _STATUS_NAMES.get(self.status, "status %d" % status)
        super().__init__("%s: %s" % (self.status_name, message))


def invalid(message):
    return SdpaError(_capi.ERROR_INVALID_ARGUMENT, message)


def unsupported(message):
    return SdpaError(_capi.ERROR_UNSUPPORTED, message)


def check(status):
    """Raises SdpaError for a failed sdpa_* status. Must run on the thread
    that made the call, right after it: sdpa_last_error() is thread-local and
    valid until the next sdpa_* call on that thread."""
    if status == _capi.OK:
        return
    lib = _capi.library()
    message = (lib.sdpa_last_error() or b"").decode("utf-8", "replace")
    error = SdpaError(status, message or "(no detail)")
    # The library's own wording of the status wins over ours.
    error.status_name = (lib.sdpa_status_string(status) or b"").decode() or (
        error.status_name
    )
    error.args = ("%s: %s" % (error.status_name, error.message),)
    raise error


def version():
    """The version of the loaded libsdpa, "MAJOR.MINOR.PATCH"."""
    packed = _capi.library().sdpa_version()
    return "%d.%d.%d" % (packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF)


def library_path():
    """The path (or name) from which libsdpa was loaded."""
    return _capi.library().sdpa_path


def _known_isa_bits():
    """{name: bit} of every SDPA_ISA_* bit this library knows a name for."""
    lib = _capi.library()
    names = {}
    for shift in range(64):
        name = lib.sdpa_isa_name(1 << shift).decode()
        if name != "unknown":
            names[name] = 1 << shift
    return names


def available_isas():
    """Names of the ISAs this build and this CPU can run, most capable first
    (highest SDPA_ISA_* bit first: AVX3_ZEN4, AVX3_DL, AVX3, AVX2, SSE4,
    SSSE3, SCALAR on x86). The default is the first, but AVX3 rather than
    AVX3_ZEN4 outside AMD's CPUs, whose BF16 dot products are slow."""
    lib = _capi.library()
    bits = lib.sdpa_available_isas()
    return [
        lib.sdpa_isa_name(1 << shift).decode()
        for shift in reversed(range(64))
        if bits >> shift & 1
    ]


def isa_bit(isa):
    """An ISA given by name (case-insensitive) or SDPA_ISA_* bit -> the bit."""
    if isinstance(isa, bool):
        raise invalid("isa must be an ISA name or an SDPA_ISA_* bit, not a bool")
    if isinstance(isa, int):
        if not 0 < isa < 1 << 64:
            raise invalid("isa %d is not an SDPA_ISA_* bit" % isa)
        return isa  # the library checks it is exactly one known bit
    if isinstance(isa, str):
        known = _known_isa_bits()
        for name, bit in known.items():
            if name.lower() == isa.lower():
                return bit
        raise invalid(
            "unknown isa %r; known names: %s (available here: %s)"
            % (isa, ", ".join(sorted(known)), ", ".join(available_isas()))
        )
    raise invalid("isa must be a name such as 'AVX2', got %r" % (isa,))


class _Contexts:
    """One sdpa_context per (threads, isa), created on first use, shared by
    all Python threads (the C API allows that), destroyed at exit.

    The header forbids destroying a context while a call uses it, so calls
    are counted, and at exit a context still in use (a daemon thread in a
    call) is left to the process teardown instead of destroyed under it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}  # (threads, isa bit) -> [context pointer, calls]
        atexit.register(self.destroy_idle)

    def acquire(self, threads, isa):
        """The context for threads/isa (None: the library default), counted
        as in use until release(key). Returns (key, pointer or None)."""
        if threads is None and isa is None:
            return None, None  # NULL: the process-wide default context
        key = (_threads_value(threads), 0 if isa is None else isa_bit(isa))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = [self._create(*key), 0]
                self._entries[key] = entry
            entry[1] += 1
            return key, entry[0]

    def release(self, key):
        if key is None:
            return
        with self._lock:
            self._entries[key][1] -= 1

    def destroy_idle(self):
        lib = _capi.library() if self._entries else None
        with self._lock:
            for key, (pointer, calls) in list(self._entries.items()):
                if calls == 0:
                    lib.sdpa_context_destroy(pointer)
                    del self._entries[key]

    @staticmethod
    def _create(threads, isa):
        lib = _capi.library()
        options = _capi.ContextOptions(
            struct_size=ctypes.sizeof(_capi.ContextOptions),
            num_threads=threads,
            isa=isa,
        )
        pointer = ctypes.c_void_p()
        check(lib.sdpa_context_create(ctypes.byref(options), ctypes.byref(pointer)))
        return pointer


def _threads_value(threads):
    if threads is None:
        return 0  # all hardware threads
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise invalid("threads must be an int or None, got %r" % (threads,))
    if not -(2**31) <= threads < 2**31:
        raise invalid("threads %d does not fit the C API's int32" % threads)
    return threads  # the library rejects negative counts with its message


contexts = _Contexts()


def context_info(threads=None, isa=None):
    """What the context for these options runs: {"threads": n, "isa": name}.
    threads=None and isa=None describe the library's default context."""
    lib = _capi.library()
    key, pointer = contexts.acquire(threads, isa)
    try:
        if pointer is None:
            pointer = lib.sdpa_default_context()
            if not pointer:
                raise SdpaError(_capi.ERROR_INTERNAL, "no default context")
        return {
            "threads": lib.sdpa_context_num_threads(pointer),
            "isa": lib.sdpa_isa_name(lib.sdpa_context_isa(pointer)).decode(),
        }
    finally:
        contexts.release(key)
