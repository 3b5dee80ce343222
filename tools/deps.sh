#!/usr/bin/env bash
# Installs everything cnncc needs to build, test and compare with PyTorch
# (plus scikit-learn for the digits demo, Graphviz to draw graphs and
# dask.distributed for examples/batch_dask.py),
# from Debian 12's packages. --target=aarch64-linux-gnu (docs/targets.md)
# needs lld-19 and libc6-dev-arm64-cross (clang-19 builds its runtime); its
# tests gcc-aarch64-linux-gnu and qemu-user-static. Skips apt-get when all are already installed.
set -euo pipefail
PKGS=(build-essential cmake pkg-config
      llvm-19-dev libyaml-dev libjansson-dev libcriterion-dev
      libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata python3-onnx
      python3 python3-numpy python3-torch python3-torchvision
      python3-sklearn graphviz python3-distributed
      clang-19 libclang-rt-19-dev clang-format-19 clang-format valgrind
      lld-19 libc6-dev-arm64-cross gcc-aarch64-linux-gnu qemu-user-static)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
