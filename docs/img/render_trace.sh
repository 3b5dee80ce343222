#!/usr/bin/env bash
# Re-makes the ResNet-50 trace of docs/performance.md ("A trace to look at"):
#   docs/img/render_trace.sh [BUILD] [WAIT_S]   (default: build, 600)
# compiles examples/resnet50.yaml, waits (at most WAIT_S seconds) until the
# rest of the machine uses under 15% of its CPUs (bench/bench.py's
# wait_quiet, as bench/run.sh --wait-quiet), runs the model with
# BUILD/cnn_host on 2 threads (a warm-up and 10 timed runs) under
# CNN_PROFILE=trace:resnet50-trace.json, and draws the fastest run with
# trace.py into resnet50-trace.svg. With Debian's chromium, also a PNG of
# the drawing (resnet50-trace.png, not kept in git: for a look in an image
# viewer).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-$here/../../build}")
wait_s=${2:-600}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/cnncc" "$here/../../examples/resnet50.yaml" -o "$work/resnet50.so" -q
/usr/bin/python3 -c "
import sys; sys.path.insert(0, '$here/../../bench'); import bench
s = bench.wait_quiet($wait_s)
print('render_trace: the rest of the machine used', 'unknown' if s is None else f'{100 * s:.0f}%',
      'of the CPUs just before the trace')"
CNN_PROFILE=trace:"$here/resnet50-trace.json" CNN_NUM_THREADS=2 \
  "$build/cnn_host" "$work/resnet50.so" --runs 10 >/dev/null
/usr/bin/python3 "$here/trace.py" "$here/resnet50-trace.json" "$here/resnet50-trace.svg"
if command -v chromium >/dev/null; then
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --hide-scrollbars --window-size=1400,460 \
    --screenshot="$work/shot.png" "file://$here/resnet50-trace.svg" >/dev/null 2>&1
  mv "$work/shot.png" "$here/resnet50-trace.png"
  echo "docs/img/resnet50-trace.png"
fi
