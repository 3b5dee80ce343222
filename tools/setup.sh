#!/usr/bin/env bash
# The main job, from nothing (README "Two commands"):
#   1. install the dependencies (tools/deps.sh) and build cnncc (tools/build.sh);
#      put build/python on /usr/bin/python3's path (a cnncc.pth file in its
#      site-packages, or the user's if that is not writable): `import cnncc`
#   2. train LeNet-5 on scikit-learn's handwritten digits with PyTorch
#      (examples/digits/train_digits.py -> out/digits/)
#   3. compile examples/lenet5.yaml with the trained weights to out/lenet5.so
#   4. classify the 360 held-out digits with it (build/cnn_digits): accuracy,
#      a few digits as ASCII art, and the check that every prediction equals
#      PyTorch's; then from Python (the model's info, and the Python twin)
#   5. draw the network: out/lenet5.svg and GoogLeNet after fusion,
#      out/googlenet.svg (Graphviz)
#   6. a big one: compile ResNet-50 to out/resnet50.so and time it
#      (skip with --no-resnet)
set -euo pipefail
cd "$(dirname "$0")/.."
resnet=1
[ "${1:-}" = --no-resnet ] && resnet=0
say() { printf '\n== %s\n' "$*"; }

say "1. dependencies and build"
tools/deps.sh
tools/build.sh
mkdir -p out
site=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site" 2>/dev/null || true
if [ ! -w "$site" ]; then
  site=$(/usr/bin/python3 -m site --user-site)
  mkdir -p "$site"
fi
echo "$PWD/build/python" >"$site/cnncc.pth"
echo "import cnncc: $site/cnncc.pth -> $PWD/build/python"

say "2. train LeNet-5 on handwritten digits (PyTorch)"
/usr/bin/python3 examples/digits/train_digits.py out/digits

say "3. compile it: cnncc examples/lenet5.yaml --weights out/digits/lenet5.safetensors -o out/lenet5.so"
build/cnncc examples/lenet5.yaml --weights out/digits/lenet5.safetensors -o out/lenet5.so

say "4. classify the held-out digits: build/cnn_digits out/lenet5.so out/digits"
build/cnn_digits out/lenet5.so out/digits
/usr/bin/python3 -c "import cnncc; m = cnncc.load('out/lenet5.so'); print(m.info)"
/usr/bin/python3 examples/digits/classify_digits.py out/lenet5.so out/digits | tail -2

say "5. draw the graphs: out/lenet5.svg, out/googlenet.svg"
build/cnncc examples/lenet5.yaml --emit=dot -q -o - | dot -Tsvg -o out/lenet5.svg
build/cnncc examples/googlenet.yaml --emit=dot -O3 -q -o - | dot -Tsvg -o out/googlenet.svg
echo "open out/lenet5.svg and out/googlenet.svg in a browser"

if [ $resnet -eq 1 ]; then
  say "6. a big one: ResNet-50 (random weights) to out/resnet50.so"
  build/cnncc examples/resnet50.yaml -o out/resnet50.so
  build/cnn_host out/resnet50.so --runs 5
fi
