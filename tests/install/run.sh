#!/usr/bin/env bash
# Installs the build into a temporary prefix and uses it as a user would:
#   tests/install/run.sh BUILD_DIR SOURCE_DIR WORK_DIR
# 1. cmake --install BUILD_DIR --prefix WORK_DIR/prefix
# 2. the installed cnncc compiles a spec (finding its runtime beside it),
#    and so does the installed Python package (finding that cnncc)
# 3. examples/cmake-consumer is configured with -DCMAKE_PREFIX_PATH=prefix,
#    built (cnncc_add_model compiles LeNet-5 and its typed header, and with
#    TARGET aarch64-linux-gnu an Arm .so when the build has that runtime)
#    and its two hosts run (classify by dlopen, typed linked through lenet5.h)
# 4. pkg-config --cflags cnncc (PKG_CONFIG_PATH=prefix/lib/pkgconfig) points
#    at prefix/include, and a host compiles with just those flags
set -euo pipefail
build=$(realpath "$1") src=$(realpath "$2") work=$3
rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")
prefix=$work/prefix
step() { echo "install-test: $*"; }

step "cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in bin/cnncc include/cnn.h lib/cnncc/libcnnrt.a lib/cmake/cnncc/cnnccConfig.cmake \
         lib/cmake/cnncc/cnnccConfigVersion.cmake lib/pkgconfig/cnncc.pc; do
  [ -e "$prefix/$f" ] || { echo "install-test: $f was not installed"; exit 1; }
done

step "the installed cnncc compiles lenet5.yaml"
env -u CNNCC_RUNTIME "$prefix/bin/cnncc" "$src/examples/lenet5.yaml" -o "$work/lenet5.so" -q

pydir=$(sed -n 's/^CNNCC_PYTHON_DIR:STRING=//p' "$build/CMakeCache.txt")
case $pydir in /*) ;; *) pydir=$prefix/$pydir;; esac
step "the Python package in $pydir finds the installed cnncc"
for f in __init__.py _model.py _compile.py _where.py; do
  [ -f "$pydir/cnncc/$f" ] || { echo "install-test: $pydir/cnncc/$f was not installed"; exit 1; }
done
(cd "$work" && env -u CNNCC -u CNNCC_RUNTIME PYTHONPATH="$pydir" /usr/bin/python3 -c "
import cnncc, numpy as np
assert cnncc.__file__.startswith('$pydir/'), cnncc.__file__
exe = cnncc.find_cnncc()
assert exe == '$prefix/bin/cnncc', exe
cnncc.compile('$src/examples/lenet5.yaml', 'py-lenet5.so')
with cnncc.load('py-lenet5.so') as m:
    y = m(np.zeros((2, 1, 32, 32), np.float32))
assert y.shape == (2, 10)
print('  python: cnncc.compile with', exe, '->', m.info['name'], y.shape)
")

step "examples/cmake-consumer against the prefix"
arm=OFF
[ -e "$prefix/lib/cnncc/aarch64-linux-gnu/libcnnrt.a" ] && arm=ON
cmake -S "$src/examples/cmake-consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCONSUMER_AARCH64=$arm >"$work/consumer-configure.log"
cmake --build "$work/consumer" >"$work/consumer-build.log"
out=$("$work/consumer/classify")
echo "  $out"
case $out in lenet5:*) ;; *) echo "install-test: unexpected output from classify"; exit 1;; esac
out=$("$work/consumer/typed")
echo "$out" | sed 's/^/  /'
[ -f "$work/consumer/lenet5.h" ] || { echo "install-test: HEADER wrote no lenet5.h"; exit 1; }
[ "$(echo "$out" | grep -c '^lenet5: sample [01]: class [0-9]$')" -eq 2 ] ||
  { echo "install-test: unexpected output from typed"; exit 1; }
if [ $arm = ON ]; then
  step "cnncc_add_model(... TARGET aarch64-linux-gnu) made an aarch64 .so"
  file "$work/consumer/lenet5_aarch64.so" | grep -q "ARM aarch64" ||
    { echo "install-test: lenet5_aarch64.so is not an aarch64 shared object"; exit 1; }
fi

step "pkg-config --cflags cnncc"
cflags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags cnncc | xargs)
libs=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --libs cnncc)
echo "  cflags: $cflags   libs: $libs"
[ "$(realpath -m "${cflags#-I}")" = "$prefix/include" ] ||
  { echo "install-test: expected -I$prefix/include"; exit 1; }
cc $cflags "$src/examples/host.c" -o "$work/host" $libs -lm
"$work/host" "$work/lenet5.so" --runs 1 >"$work/host.log"
step "ok"
