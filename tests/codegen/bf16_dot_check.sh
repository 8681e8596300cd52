#!/usr/bin/env bash
# Guards the AVX3_ZEN4 Q·Kᵀ tile (src/kernels/qk_bf16_tile-inl.h): its BF16
# dot products must reach the binary as vdpbf16ps on registers, one per
# (query vector, key) of the tile and its one-key remainder, with no
# accumulator or operand on the stack, and the first tile's K prefetch must
# survive (GCC deletes prefetch-only calls it deems const; prefetch_check.sh).
# Likewise the P·V tiles of SDPA_FLAG_BF16_WEIGHTS (pv_bf16_tile-inl.h):
# PvBf16Block holds one vdpbf16ps per (row, vector) of each tile it may run,
# 6 down to 1 rows x chunks of 4, 2 and 1 vectors: 21 x 7 = 147.
# Highway 1.0.3 has no such op, so the intrinsics bypass its ops: a build
# where the tile fell back to something else would still pass every test.
#
#   bf16_dot_check.sh LIBRARY   (libsdpa.so or libsdpa.a, with symbols)
set -euo pipefail
"${OBJDUMP:-objdump}" -d -C --no-show-raw-insn "$1" | awk '
  /^[0-9a-f]+ <.*>:$/ {
    fn = ""
    if (match($0, /sdpa::N_AVX3::(QkBf16Block<[0-9]>|PvBf16Block)/)) {
      fn = substr($0, RSTART, RLENGTH)
      seen[fn] = 1
    }
    next
  }
  fn == "" { next }
  /\tvdpbf16ps/ { dots[fn]++; if (/\(%rsp|\(%rbp/) stack[fn]++ }
  /\tvmulps.*\(%rsp/ { stack[fn]++ }
  /\tprefetch/ { fetch[fn]++ }
  END {
    status = 0
    for (q = 1; q <= 3; ++q) {
      fn = "sdpa::N_AVX3::QkBf16Block<" q ">"
      want = 9 * q  # q vectors x (8 keys + the 1-key remainder)
      if (!(fn in seen)) {
        print "FAIL " fn ": no such function (renamed or inlined?)"; status = 1
        continue
      }
      line = sprintf("%s: %d vdpbf16ps (want %d), %d on the stack, %d prefetches",
                     fn, dots[fn], want, stack[fn], fetch[fn])
      if (dots[fn] != want || stack[fn] > 0 || fetch[fn] < 1) {
        print "FAIL " line; status = 1
      } else {
        print "ok   " line
      }
    }
    fn = "sdpa::N_AVX3::PvBf16Block"
    if (!(fn in seen)) {
      print "FAIL " fn ": no such function (renamed or inlined?)"; status = 1
    } else {
      line = sprintf("%s: %d vdpbf16ps (want 147), %d on the stack", fn,
                     dots[fn], stack[fn])
      if (dots[fn] != 147 || stack[fn] > 0) {
        print "FAIL " line; status = 1
      } else {
        print "ok   " line
      }
    }
    exit status
  }'
