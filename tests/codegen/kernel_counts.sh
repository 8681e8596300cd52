# Sourced by the codegen checks: counts instructions in each x86 target's
# Q·Kᵀ + softmax (ProcessTileRows<TK,TV>) and P·V (PvForTile<kSkipZeros,TV>)
# functions of a library, named without spaces (ProcessTileRows<float,float>).

# kernel_counts LIBRARY REGEX: "TARGET::TaskRunner::FUNCTION COUNT" lines,
# COUNT the instructions matching the awk REGEX.
kernel_counts() {
  "${OBJDUMP:-objdump}" -d -C --no-show-raw-insn "$1" | awk -v re="$2" '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; n[fn] += 0; next }
    $0 ~ re { n[fn]++ }
    END {
      for (f in n) {
        if (match(f, /sdpa::N_[A-Z0-9_]+::TaskRunner::(ProcessTileRows|PvForTile)<[^>(]*>/)) {
          name = substr(f, RSTART + 8, RLENGTH - 8)
          gsub(/ /, "", name)
          print name, n[f]
        }
      }
    }'
}

# check_kernel_counts COUNTS WHAT FUNCTION=MIN:MAX... : each of SSSE3, SSE4,
# AVX2 and AVX3 must have FUNCTION with MIN <= count <= MAX (COUNTS from
# kernel_counts; WHAT names the instructions). Prints a line per function;
# returns 1 if any fails.
check_kernel_counts() {
  local counts="$1" what="$2" status=0 checked=0
  shift 2
  local target spec function range count
  for target in SSSE3 SSE4 AVX2 AVX3; do
    for spec in "$@"; do
      function="${spec%=*}"
      range="${spec#*=}"
      local name="$target::TaskRunner::$function"
      count="$(awk -v name="$name" '$1 == name { print $2 }' <<<"$counts")"
      checked=$((checked + 1))
      if [[ -z "$count" ]]; then
        echo "FAIL $name: no such function (renamed or inlined? then this" \
             "check needs updating)"
        status=1
      elif ((count < ${range%:*} || count > ${range#*:})); then
        echo "FAIL $name: $count $what, expected ${range%:*} to ${range#*:}"
        status=1
      else
        echo "ok   $name: $count $what"
      fi
    done
  done
  echo "$checked functions checked"
  return "$status"
}
