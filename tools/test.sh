#!/usr/bin/env bash
# The whole test suite: dependencies, build, then every test through ctest.
#   tools/test.sh            everything (unit + end-to-end against PyTorch)
#   tools/test.sh -L unit    the quick subset (seconds)
# Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh -DCNNCC_WERROR=ON   # CI is warning-free
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
