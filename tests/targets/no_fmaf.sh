#!/bin/sh
# No libm call on a hot path of an x86 target without FMA.
#
#   tests/targets/no_fmaf.sh CNNCC SPEC [SPEC...]
#
# Each spec is compiled with --emit=asm (deterministic weights) for
# x86-64-v2 (SSE4.2) and x86-64 (SSE2), the two levels without FMA, where
# an llvm.fma of the kernels used to become one `call fmaf` per lane
# (33,200 in ResNet-18). Counts the calls of fmaf/fma and the packed
# multiplies and adds (mulps, addps) of each, prints them, and fails (exit
# 1) when a call of fmaf or fma is left, or when there is no packed
# multiply at all (the kernels did not vectorize; nothing was checked).
set -eu
cnncc=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for spec in "$@"; do
  for cpu in x86-64-v2 x86-64; do
    s=$tmp/$(basename "$spec" .yaml)-$cpu.s
    "$cnncc" "$spec" -q --target-cpu="$cpu" --emit=asm -o "$s"
    calls=$(grep -cE '^\s*(call|jmp)q?\s+fmaf?(@PLT)?\s*$' "$s" || true)
    mulps=$(grep -cE '^\s*mulps\b' "$s" || true)
    addps=$(grep -cE '^\s*addps\b' "$s" || true)
    echo "no_fmaf $(basename "$spec") $cpu: $calls calls of fmaf/fma, $mulps mulps, $addps addps"
    if [ "$calls" -ne 0 ] || [ "$mulps" -eq 0 ]; then
      status=1
    fi
  done
done
exit $status
