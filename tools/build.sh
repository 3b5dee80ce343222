#!/usr/bin/env bash
# Configures and builds cnncc in ./build (Release with debug info).
#   tools/build.sh                      the build the README's commands use
#   tools/build.sh -DCNNCC_WERROR=ON    any extra arguments go to cmake's
#                                       configure step (tools/test.sh: -Werror)
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build build -j"$(nproc)"
