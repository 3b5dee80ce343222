#!/usr/bin/env bash
# Re-makes the ResNet-50 trace of docs/performance.md ("A trace to look at"):
#   docs/img/render_trace.sh [BUILD]      (default: build)
# compiles examples/resnet50.yaml, runs it with BUILD/cnn_host on 2 threads
# (a warm-up and 3 timed runs) under CNN_PROFILE=trace:resnet50-trace.json,
# and draws the fastest run with trace.py into resnet50-trace.svg. With
# Debian's chromium, also a PNG of the drawing (resnet50-trace.png, not
# kept in git: for a look in an image viewer).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-$here/../../build}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/cnncc" "$here/../../examples/resnet50.yaml" -o "$work/resnet50.so" -q
CNN_PROFILE=trace:"$here/resnet50-trace.json" CNN_NUM_THREADS=2 \
  "$build/cnn_host" "$work/resnet50.so" --runs 3 >/dev/null
/usr/bin/python3 "$here/trace.py" "$here/resnet50-trace.json" "$here/resnet50-trace.svg"
if command -v chromium >/dev/null; then
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --hide-scrollbars --window-size=1400,460 \
    --screenshot="$work/shot.png" "file://$here/resnet50-trace.svg" >/dev/null 2>&1
  mv "$work/shot.png" "$here/resnet50-trace.png"
  echo "docs/img/resnet50-trace.png"
fi
