#!/usr/bin/env bash
# The typed C header (cnncc --emit=header, --header FILE), compiled and used:
#   tests/header/run.sh CNNCC SOURCE_DIR WORK_DIR
# 1. headers for lenet5 (--header beside the .so), resnet50 (--emit=header),
#    tiny (two inputs, two outputs) and awkward (an ONNX model whose names
#    are not C identifiers: make_awkward.py)
# 2. all four in one translation unit, as C11 and as C++17 with
#    -Wall -Wextra -Wpedantic -Werror
# 3. typed_linked.c (linked with lenet5.so) and typed_dlopen.c (dlopen of
#    tiny.so and awkward.so), each as C11 and as C++17 with
#    -Wall -Wextra -Werror, run: the wrappers give cnn_run's bits and each
#    header's _check accepts its network only
# Also: --emit=header without -o, `--emit header`, the last --emit counting,
# and a --header that cannot be written leaving no .so.
set -euo pipefail
cnncc=$(realpath "$1") src=$(realpath "$2") work=$3
here=$src/tests/header
rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")
step() { echo "header-test: $*"; }

step "headers"
"$cnncc" "$src/examples/lenet5.yaml" -o "$work/lenet5.so" --header "$work/lenet5.h" -q
"$cnncc" "$src/examples/resnet50.yaml" --emit=header -o "$work/resnet50.h" -q
"$cnncc" "$src/tests/robustness/tiny.yaml" -o "$work/tiny.so" --header "$work/tiny.h" -q
/usr/bin/python3 "$here/make_awkward.py" "$work/awkward.onnx" >"$work/export.log" 2>&1 ||
  { cat "$work/export.log"; exit 1; }
"$cnncc" "$work/awkward.onnx" -o "$work/awkward.so" --header "$work/awkward.h" -q
for h in lenet5 resnet50 tiny awkward; do
  [ -s "$work/$h.h" ] || { echo "header-test: $h.h was not written"; exit 1; }
done

step "--emit=header names its output NET.h; a --header that cannot be written leaves no .so"
(cd "$work" && "$cnncc" "$src/examples/lenet5.yaml" --emit=header -q && cmp -s lenet5.h "$work/lenet5.h") ||
  { echo "header-test: --emit=header without -o did not write the same lenet5.h"; exit 1; }
if "$cnncc" "$src/examples/lenet5.yaml" -o "$work/gone.so" --header "$work/no-dir/gone.h" -q \
     2>"$work/gone.err"; then
  echo "header-test: --header into a missing directory succeeded"; exit 1
fi
grep -q "cannot write '$work/no-dir/gone.h'" "$work/gone.err" ||
  { cat "$work/gone.err"; echo "header-test: no message naming the header"; exit 1; }
[ ! -e "$work/gone.so" ] || { echo "header-test: the .so was left behind"; exit 1; }

step "--emit header (no '=') is --emit=header; the last --emit given counts"
mkdir -p "$work/spaced" "$work/last"  # the header names its own file: same names
"$cnncc" "$src/examples/lenet5.yaml" --emit header -o "$work/spaced/lenet5.h" -q
cmp -s "$work/spaced/lenet5.h" "$work/lenet5.h" || { echo "header-test: --emit header differs"; exit 1; }
"$cnncc" "$src/examples/lenet5.yaml" --emit=ir --emit=header -o "$work/last/lenet5.h" -q
cmp -s "$work/last/lenet5.h" "$work/lenet5.h" || { echo "header-test: --emit=ir --emit=header"; exit 1; }
"$cnncc" "$src/examples/lenet5.yaml" --emit=header --emit=ir -o "$work/last.ir" -q
"$cnncc" "$src/examples/lenet5.yaml" --emit=ir -o "$work/lenet5.ir" -q
cmp -s "$work/last.ir" "$work/lenet5.ir" || { echo "header-test: --emit=header --emit=ir"; exit 1; }

inc=(-I"$work" -I"$src/runtime")
printf '#include "lenet5.h"\n#include "resnet50.h"\n#include "tiny.h"\n#include "awkward.h"\nint main(void) { return 0; }\n' \
  >"$work/all.c"
step "all four headers in one file: gcc -std=c11 and g++ -std=c++17, -Wall -Wextra -Wpedantic -Werror"
gcc -std=c11 -Wall -Wextra -Wpedantic -Werror "${inc[@]}" -c "$work/all.c" -o "$work/all-c.o"
g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror "${inc[@]}" -x c++ -c "$work/all.c" -o "$work/all-cxx.o"

flags=(-Wall -Wextra -Werror -O2 "${inc[@]}")
step "typed_linked.c and typed_dlopen.c as C11"
gcc -std=c11 "${flags[@]}" "$here/typed_linked.c" "$work/lenet5.so" -Wl,-rpath,"$work" \
  -o "$work/linked-c"
gcc -std=c11 "${flags[@]}" "$here/typed_dlopen.c" -o "$work/dlopen-c" -ldl
step "typed_linked.c and typed_dlopen.c as C++17"
g++ -std=c++17 "${flags[@]}" -x c++ "$here/typed_linked.c" -x none "$work/lenet5.so" \
  -Wl,-rpath,"$work" -o "$work/linked-cxx"
g++ -std=c++17 "${flags[@]}" -x c++ "$here/typed_dlopen.c" -o "$work/dlopen-cxx" -ldl
for lang in c cxx; do
  "$work/linked-$lang"
  "$work/dlopen-$lang" "$work/tiny.so" "$work/awkward.so"
done
step "ok"
