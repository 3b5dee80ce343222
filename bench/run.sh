#!/bin/sh
# cnncc's benchmark: cnncc vs ONNX Runtime vs PyTorch (see bench/README.md).
#
#   bench/run.sh [--quick] [--smoke] [--nets resnet50,googlenet] [--threads 1,2]
#                [--runs 20] [--rounds 4] [--warmup 3] [--engines cnncc,ort,pytorch]
#                [--json FILE] [--regen] [--target-cpus native,x86-64-v3,x86-64-v2]
#   bench/run.sh --install-ort      npm install onnxruntime-node 1.30 into bench/.ort
#
# Environment: CNNCC_BUILD (cnncc build dir, default <repo>/build), BENCH_WORK
# (data, logs and results, default bench/.work), BENCH_ORT_DIR (default
# bench/.ort), BENCH_BIN (prebuilt bench_host/bench_peak; else built by make).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = "--install-ort" ]; then
  dir=${BENCH_ORT_DIR:-$HERE/.ort}
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] ||
    printf '{"name": "cnncc-bench-ort", "private": true}\n' >"$dir/package.json"
  # --ignore-scripts: the install script only fetches GPU extras (fails offline).
  cd "$dir" && exec npm install --ignore-scripts --no-audit --no-fund \
    "onnxruntime-node@${ORT_VERSION:-~1.30.0}"
fi

# PyTorch 1.13 is Debian's python3-torch, under /usr/bin/python3 (the python3
# first on PATH may lack it). bench.py itself needs only the standard library.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" "$HERE/bench.py" "$@"
