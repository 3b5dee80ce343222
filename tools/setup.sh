#!/usr/bin/env bash
# The main job, from nothing: install the dependencies, build cnncc, compile
# a zoo network (ResNet-50) to a shared object and run it from a host program.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh
mkdir -p out
build/cnncc examples/resnet50.yaml -o out/resnet50.so
build/cnn_host out/resnet50.so --runs 5
