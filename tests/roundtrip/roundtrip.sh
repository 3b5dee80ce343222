#!/usr/bin/env bash
# The round trip of --emit=spec through the cnncc command, for one network:
#
#   tests/roundtrip/roundtrip.sh CNNCC CNN_HOST SPEC WORKDIR
#
#   1. cnncc SPEC --emit=spec -o WORKDIR/net.yaml (with the deterministic
#      weights, seed 0): net.yaml and net.safetensors, nothing else;
#   2. `--emit=ir` of SPEC and of net.yaml with its weights, at -O0 (the
#      graph as written) and -O3 (after every pass), are the same text but
#      for the names in quotes;
#   3. both compiled to a .so (-O2) and run by cnn_host on the same input at
#      batch 2 give the same output, bit for bit.
# WORKDIR is emptied first and removed when the network passes.
set -euo pipefail
if [ $# -ne 4 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
cnncc=$(realpath "$1") host=$(realpath "$2") spec=$(realpath "$3") work=$4
net=$(basename "$spec" .yaml)
rm -rf "$work"
mkdir -p "$work"
cd "$work"

"$cnncc" "$spec" -q --emit=spec -o net.yaml
found=$(ls | tr '\n' ' ')
[ "$found" = "net.safetensors net.yaml " ] || { echo "$net: --emit=spec wrote: $found"; exit 1; }

# A parameter layer's one tensor is named after the layer ([layer_scale 96x1x1]
# in ConvNeXt's block, [features_1_1_layer_scale ...] once written flat), so
# that name is a name too.
names_out() { sed -E 's/"[^"]*"/""/g; s/^( *%[0-9]+ parameter "" \[)[^ ]+ /\1 /'; }
for level in -O0 -O3; do
  "$cnncc" "$spec" -q $level --emit=ir -o - | names_out >direct$level.ir
  "$cnncc" net.yaml -q --weights net.safetensors $level --emit=ir -o - | names_out >written$level.ir
  if ! diff -u direct$level.ir written$level.ir >ir$level.diff; then
    echo "$net: the written spec is another graph at $level (modulo names):"
    head -40 ir$level.diff
    exit 1
  fi
done

"$cnncc" "$spec" -q -o direct.so
"$cnncc" net.yaml -q --weights net.safetensors -o written.so
"$host" ./direct.so --batch 2 --runs 1 --output direct.out >/dev/null
"$host" ./written.so --batch 2 --runs 1 --output written.out >/dev/null
if ! cmp -s direct.out written.out; then
  echo "$net: the written spec and weights compute other bits than the spec"
  exit 1
fi
echo "$net: --emit=spec round trip: same graph (-O0, -O3) and same output bits ($(stat -c %s direct.out) bytes)"
cd /
rm -rf "$work"
