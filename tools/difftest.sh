#!/usr/bin/env bash
# Random networks against PyTorch (tests/difftest/, docs/robustness.md).
#
#   tools/difftest.sh --seeds 0-1999 --jobs 2    a long campaign, by hand
#   tools/difftest.sh --seeds 0-9                a quick look
#   tools/difftest.sh --seeds 0-1999 --rotate 1 --jobs 2
#                                                one configuration per seed,
#                                                taking turns (2,000 compiles)
#   tools/difftest.sh --replay                   the regressions only
#   tools/difftest.sh ... --build-dir DIR --work DIR --configs O0 O3 ...
#
# Each seed is one generated network, compiled by cnncc in every
# configuration (tests/difftest/difftest.py's CONFIGS), run, and compared
# with its PyTorch twin. The programs are copied into WORK/bin first, so
# the tree may be rebuilt while a campaign runs. Findings go to
# WORK/findings.jsonl as they come (their case directories stay in
# WORK/SEED, for tests/difftest/reduce.py), and WORK/summary.json counts
# graphs, compiles, runs and findings and lists the passes and kernels the
# networks exercised and the ones they missed. Exit 1 on any finding.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="$src/build" work="" args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --replay) args+=(--replay "$src/tests/difftest/regressions"); shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ -x "$build/cnncc" ] && [ -x "$build/tests/difftest/cnn_gen" ] ||
  { echo "difftest.sh: no build in $build (tools/build.sh first)" >&2; exit 2; }
[ -n "$work" ] || work="$build/difftest"
exec /usr/bin/python3 "$src/tests/difftest/difftest.py" --build "$build" --work "$work" "${args[@]}"
