#!/usr/bin/env bash
# Re-renders the pictures of docs/graphs.md from the specs beside this script:
#   docs/img/render.sh [CNNCC]        (default: build/cnncc; needs Graphviz's dot)
# For each SPEC.yaml: SPEC-O0.svg (the graph as written, no passes) and
# SPEC-O3.svg (after every pass: fused kernels, split 1x1 convs, concat slices).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cnncc=$(realpath "${1:-$here/../../build/cnncc}")
cd "$here"
for spec in inception bottleneck; do
  for opt in 0 3; do
    "$cnncc" "$spec.yaml" --emit=dot -O$opt -q -o - | dot -Tsvg -o "$spec-O$opt.svg"
    echo "docs/img/$spec-O$opt.svg"
  done
done
