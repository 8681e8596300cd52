#!/usr/bin/env bash
# Guards the x86 kernels' register tiles against accumulators living on the
# stack. With 16 registers the SSE Q·Kᵀ pair tile has room for exactly its
# 12 accumulators, one K pair, a temporary and two Q vectors; GCC 12 at
# times (depending on unrelated code in the same file) held all four Q
# vectors and kept two accumulators on the stack instead, a load-add-store
# chain every step that made SSE4 prefill 20% slower while every test
# stayed green (src/kernels/qk_pair_tile-inl.h now pins two Q vectors to
# memory operands). This counts the vector adds, multiplies and FMAs with a
# stack operand in each target's Q·Kᵀ + softmax (ProcessTileRows) and P·V
# (PvForTile), for f32 rows and for BF16 rows read in place (decoding), and
# fails above a handful: g++ 12 -O3 emits 0-2 in cold code
# when the tiles are in registers, 9-17 when they were not.
#
#   accumulator_spill_check.sh LIBRARY   (libsdpa.so or libsdpa.a, with symbols)
set -euo pipefail
source "$(dirname "$0")/kernel_counts.sh"
counts="$(kernel_counts "$1" \
  '\t(v?(add|mul)ps|vfn?m(add|sub)[0-9]+ps) +-?(0x[0-9a-f]+)?\\(%rsp')"
check_kernel_counts "$counts" "vector adds, multiplies or FMAs on the stack" \
  "ProcessTileRows<float,float>=0:4" "PvForTile<false,float>=0:4" \
  "PvForTile<true,float>=0:4" \
  "ProcessTileRows<hwy::bfloat16_t,hwy::bfloat16_t>=0:4" \
  "PvForTile<false,hwy::bfloat16_t>=0:4" "PvForTile<true,hwy::bfloat16_t>=0:4"
