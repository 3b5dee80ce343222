#!/usr/bin/env bash
# Every op, op attribute, layer key and top-level key that the spec language
# accepts must be documented (as `code`) in docs/spec.md.
#   tests/diag/check_spec_docs.sh frontend/spec ir/ops.def docs/spec.md
set -euo pipefail
room=$1 opsdef=$2 doc=$3
src=("$room"/*.c)
# ops: every OP(ENUM, "name", ...) of ops.def not marked OPF_NOSPEC, and the
# aliases of frontend/spec/ops.c: {.op = OP_..., .alias = "global_avgpool", ...
ops=$(grep -E '^OP\(' "$opsdef" | grep -v OPF_NOSPEC | cut -d'"' -f2)
aliases=$(cat "${src[@]}" | grep -oE '\.alias = "[a-z_0-9]+"' | cut -d'"' -f2)
# attributes: ATTR_INT("out", ...), ATTR_PAIR("kernel", ...), ...
attrs=$(cat "${src[@]}" | grep -oE 'ATTR_[A-Z_]+\("[a-z_0-9]+"' | cut -d'"' -f2)
# the key lists: parse_layer_keys[] and main_keys[] (their initializers)
keys=$(sed -n '/layer_keys\[\] = {/,/};/p; /main_keys\[\] = {/,/};/p' "${src[@]}" | grep -oE '"[a-z_]+"' | tr -d '"')
missing=0 n=0
for w in $ops $aliases $attrs $keys; do
  n=$((n + 1))
  if ! grep -qF -- "\`$w\`" "$doc"; then
    echo "spec_docs: '$w' (accepted by $room) is not documented in $doc"
    missing=1
  fi
done
[ "$n" -gt 30 ] || { echo "spec_docs: found only $n words in $room and $opsdef; is the parser of this script stale?"; exit 1; }
[ -n "$aliases" ] || { echo "spec_docs: found no alias in $room; is the parser of this script stale?"; exit 1; }
[ $missing -eq 0 ] && echo "spec_docs: all $n ops, attributes and keys are in $doc"
exit $missing
