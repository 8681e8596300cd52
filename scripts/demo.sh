#!/usr/bin/env bash
# Installs what is missing, builds sdpa (Release) and runs the demo: one
# attention problem on every ISA this CPU offers, with time, GFLOP/s and the
# error against the float64 reference. Arguments go to the demo, e.g.
#   bash scripts/demo.sh --seq=4096 --dim=64 --causal --threads=1
set -euo pipefail
cd "$(dirname "$0")/.."
build="${SDPA_BUILD_ROOT:-build-demo}"

bash scripts/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSDPA_BUILD_TESTS=OFF -DSDPA_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" --target sdpa_demo -j "$(nproc)"
"$build/examples/sdpa_demo" "$@"
