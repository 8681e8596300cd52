#!/usr/bin/env bash
# Guards the K/V prefetches of the x86 kernels against the compiler deleting
# them. GCC 12 treats a prefetch-only function as const and deletes the calls
# it does not inline; from 02b5c3c to 0cdfa8c that silently removed the
# one-tile and decode prefetches (AVX2 8-query decoding: 70 -> 48 GFLOP/s)
# while every test stayed green. The helpers are HWY_INLINE now
# (src/kernels/row_stream.h); this counts the prefetch instructions that
# reach each target's Q·Kᵀ + softmax (ProcessTile) and P·V (PvForTile)
# functions and fails if one holds fewer than half of what g++ 12 -O3 emits.
#
#   prefetch_check.sh LIBRARY   (libsdpa.so or libsdpa.a, with symbols)
set -euo pipefail
library="$1"
objdump="${OBJDUMP:-objdump}"

counts="$("$objdump" -d -C --no-show-raw-insn "$library" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; n[fn] += 0; next }
  /\tprefetch/ { n[fn]++ }
  END {
    for (f in n) {
      if (match(f, /sdpa::N_[A-Z0-9_]+::TaskRunner::(ProcessTile|PvForTile<false>)/)) {
        print substr(f, RSTART + 8, RLENGTH - 8), n[f]
      }
    }
  }' | sort)"

# function suffix -> minimum count (g++ 12 -O3 at the time of writing:
# ProcessTile 42 on SSSE3/SSE4/AVX2 and 53 on AVX3; PvForTile 14-16 and 50).
declare -A minimum=([ProcessTile]=20 [PvForTile<false>]=7)
status=0
checked=0
for target in SSSE3 SSE4 AVX2 AVX3; do
  for function in ProcessTile 'PvForTile<false>'; do
    name="$target::TaskRunner::$function"
    count="$(awk -v name="$name" '$1 == name { print $2 }' <<<"$counts")"
    checked=$((checked + 1))
    if [[ -z "$count" ]]; then
      echo "FAIL $name: no such function in $library (renamed or inlined?" \
           "then this check needs updating)"
      status=1
    elif ((count < minimum[$function])); then
      echo "FAIL $name: $count prefetch instructions, expected >= ${minimum[$function]}" \
           "(were prefetch helper calls deleted? see src/kernels/row_stream.h)"
      status=1
    else
      echo "ok   $name: $count prefetch instructions"
    fi
  done
done
echo "$checked functions checked"
exit "$status"
