#!/usr/bin/env bash
# Every op, op attribute, layer key and top-level key that the spec language
# (frontend/spec/) accepts must be documented (as `code`) in docs/spec.md.
#   tests/diag/check_spec_docs.sh frontend/spec docs/spec.md
set -euo pipefail
room=$1 doc=$2
src=("$room"/*.c)
# ops:        {"conv2d", OP_CONV2D, ...      attributes: {"out", AK_INT, true}
ops=$(cat "${src[@]}" | grep -oE '\{"[a-z_0-9]+", OP_' | cut -d'"' -f2)
attrs=$(cat "${src[@]}" | grep -oE '\{"[a-z_0-9]+", AK_' | cut -d'"' -f2)
# the key lists: parse_layer_keys[] and main_keys[] (their initializers)
keys=$(sed -n '/layer_keys\[\] = {/,/};/p; /main_keys\[\] = {/,/};/p' "${src[@]}" | grep -oE '"[a-z_]+"' | tr -d '"')
missing=0 n=0
for w in $ops $attrs $keys; do
  n=$((n + 1))
  if ! grep -qF -- "\`$w\`" "$doc"; then
    echo "spec_docs: '$w' (accepted by $room) is not documented in $doc"
    missing=1
  fi
done
[ "$n" -gt 30 ] || { echo "spec_docs: found only $n words in $room; is the parser of this script stale?"; exit 1; }
[ $missing -eq 0 ] && echo "spec_docs: all $n ops, attributes and keys are in $doc"
exit $missing
