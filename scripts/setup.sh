#!/usr/bin/env bash
# Installs what building, testing and running sdpa needs on Debian 12, and
# nothing that is already there: a second run takes about a second.
# Needs root (or sudo) only when something is missing.
set -euo pipefail
source "$(dirname "$0")/lib/apt.sh"

# make: the pkg-config consumer check builds examples/c with its Makefile.
packages=(cmake ninja-build make g++ pkg-config libhwy-dev libtbb-dev
          libgtest-dev libbenchmark-dev libopenblas-dev python3)

apt_install_missing setup "${packages[@]}"

# The Python tests need NumPy and pytest in whichever python3 comes first on
# PATH (a pyenv one here). Debian's own interpreter refuses pip (PEP 668), so
# it gets Debian's packages instead.
if ! python3 -c 'import numpy, pytest' 2>/dev/null; then
  if [[ "$(python3 -c 'import sys; print(sys.prefix)')" == /usr ]]; then
    apt_install_missing setup python3-numpy python3-pytest
  else
    echo "setup: installing numpy pytest with $(command -v python3) -m pip"
    python3 -m pip install --quiet --disable-pip-version-check numpy pytest
  fi
fi
echo "setup: all dependencies present"
