"""Finding and loading libsdpa, its version, and the contexts' lifetime."""

import os
import re
import shutil
import subprocess
import sys

import pytest

import sdpa

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(os.path.dirname(PYTHON_DIR), "include", "sdpa", "sdpa.h")


def run_python(code, pythonpath=PYTHON_DIR, **env):
    """Runs code in a fresh interpreter that imports the package found on
    pythonpath (this source package by default); env None unsets."""
    full_env = dict(os.environ, PYTHONPATH=pythonpath)
    for name, value in env.items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    return subprocess.run([sys.executable, "-c", code], env=full_env, cwd=pythonpath,
                          capture_output=True, text=True, timeout=120)


def test_version_matches_the_header():
    if not os.path.isfile(HEADER):
        pytest.skip("not run from a source tree")
    text = open(HEADER).read()
    parts = [re.search(r"#define SDPA_VERSION_%s (\d+)" % p, text).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    assert sdpa.version() == ".".join(parts)


def test_sdpa_library_that_does_not_exist_is_reported_with_the_path():
    result = run_python("import sdpa; sdpa.version()", SDPA_LIBRARY="/nonexistent/libsdpa.so")
    assert result.returncode != 0
    assert "LibraryNotFoundError" in result.stderr
    assert "$SDPA_LIBRARY: /nonexistent/libsdpa.so (no such file)" in result.stderr


def test_a_library_without_the_api_is_refused():
    # libm loads fine but is not libsdpa: name the missing function.
    result = run_python("import sdpa; sdpa.version()", SDPA_LIBRARY="libm.so.6")
    assert result.returncode != 0
    assert "does not export sdpa_" in result.stderr, result.stderr


def test_import_does_not_load_the_library():
    result = run_python("import sdpa, sdpa._capi as c; print(c._lib is None)",
                        SDPA_LIBRARY="/nonexistent/libsdpa.so")
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr


def test_cached_contexts_are_reused_and_destroyed_at_exit():
    # Contexts for two option sets, used twice each, then a clean exit
    # (atexit destroys them; a crash or double free would fail here).
    code = """
import numpy as np, sdpa
from sdpa._runtime import contexts
x = np.ones((1, 1, 4, 8), np.float32)
for _ in range(2):
    sdpa.attention(x, x, x, threads=1)
    sdpa.attention(x, x, x, threads=2, isa="SCALAR")
print(sorted(contexts._entries))
contexts.destroy_idle()
print(len(contexts._entries))
sdpa.attention(x, x, x, threads=1)
print("ok")
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[(1, 0), (2, 1)]", "0", "ok"], result.stdout


def copy_package(destination):
    shutil.copytree(os.path.join(PYTHON_DIR, "sdpa"), os.path.join(destination, "sdpa"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.so*"))


def test_a_library_next_to_the_package_comes_before_a_build_tree(tmp_path):
    # A fake source checkout: include/sdpa/sdpa.h, python/sdpa, build*/src.
    (tmp_path / "include" / "sdpa").mkdir(parents=True)
    (tmp_path / "include" / "sdpa" / "sdpa.h").write_text("")
    copy_package(tmp_path / "python")
    built = tmp_path / "build-x" / "release" / "src" / "libsdpa.so"
    built.parent.mkdir(parents=True)
    shutil.copy(sdpa.library_path(), built)
    code = "import sdpa; print(sdpa.library_path()); print(sdpa.version())"

    result = run_python(code, pythonpath=str(tmp_path / "python"), SDPA_LIBRARY=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(built), sdpa.version()]

    beside = tmp_path / "python" / "sdpa" / "libsdpa.so"
    shutil.copy(sdpa.library_path(), beside)
    result = run_python(code, pythonpath=str(tmp_path / "python"), SDPA_LIBRARY=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(beside), sdpa.version()]


def test_nothing_found_lists_every_place_tried(tmp_path):
    copy_package(tmp_path)  # not in a source tree, no library beside it
    result = run_python("import sdpa; sdpa.version()", pythonpath=str(tmp_path),
                        SDPA_LIBRARY=None, LD_LIBRARY_PATH=None)
    if result.returncode == 0:
        pytest.skip("a libsdpa is installed on the system search path")
    for where in ("next to the package: %s" % (tmp_path / "sdpa" / "libsdpa.so"),
                  "ctypes.util.find_library('sdpa')",
                  "system search path (dlopen): libsdpa.so", "SDPA_LIBRARY"):
        assert where in result.stderr, result.stderr
