#!/usr/bin/env bash
# Guards the K/V prefetches of the x86 kernels against the compiler deleting
# them. GCC 12 treats a prefetch-only function as const and deletes the calls
# it does not inline; from 02b5c3c to 0cdfa8c that silently removed the
# one-tile and decode prefetches (AVX2 8-query decoding: 70 -> 48 GFLOP/s)
# while every test stayed green. The helpers are HWY_INLINE now
# (src/kernels/row_stream.h); this counts the prefetch instructions that
# reach each target's Q·Kᵀ + softmax (ProcessTileRows) and P·V (PvForTile)
# functions, for f32 rows and for 16-bit rows read in place (decoding), and
# fails if one holds fewer than half of what g++ 12 -O3 emits (f32:
# ProcessTileRows 50 on SSSE3/SSE4, 43 on AVX2, 54 on AVX3; PvForTile 14-16
# and 98; BF16: ProcessTileRows 3, the dot form's prefetches being loops,
# PvForTile 13-14 and 66, at the time of writing): if so, were prefetch
# helper calls deleted?
#
#   prefetch_check.sh LIBRARY   (libsdpa.so or libsdpa.a, with symbols)
set -euo pipefail
source "$(dirname "$0")/kernel_counts.sh"
counts="$(kernel_counts "$1" '\tprefetch')"
check_kernel_counts "$counts" "prefetch instructions" \
  "ProcessTileRows<float,float>=20:1000000" "PvForTile<false,float>=7:1000000" \
  "ProcessTileRows<hwy::bfloat16_t,hwy::bfloat16_t>=2:1000000" \
  "PvForTile<false,hwy::bfloat16_t>=6:1000000"
