#!/usr/bin/env bash
# Compiles and runs the complete host program of docs/abi.md (its first
# ```c block) against a freshly compiled LeNet-5, so the documented example
# keeps working:  tests/docs/abi_example.sh CNNCC SOURCE_DIR WORKDIR
set -euo pipefail
cnncc=$1 src=$2 work=$3
mkdir -p "$work"
awk '/^```c$/ { on = 1; next } /^```$/ { if (on) exit } on' "$src/docs/abi.md" > "$work/abi_example.c"
[ -s "$work/abi_example.c" ] || { echo "no C example found in docs/abi.md"; exit 1; }
cc -std=c17 -D_GNU_SOURCE -Wall -I"$src/runtime" "$work/abi_example.c" -o "$work/abi_example" -ldl
"$cnncc" "$src/examples/lenet5.yaml" -o "$work/lenet5.so" -q
out=$("$work/abi_example" "$work/lenet5.so")
echo "$out"
grep -q '^lenet5: class [0-9]$' <<<"$out"
