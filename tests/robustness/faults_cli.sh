#!/usr/bin/env bash
# faults_cli.sh: cnncc when the machine says no (docs/robustness.md, "Faults").
#
#   faults_cli.sh CNNCC WORKDIR
#
# Every compile below must end in exit 0, or exit 1 with a message naming
# the problem, and must leave nothing behind: no output file, no weights
# file, no temporary (TMPDIR points into the case's directory, which must
# hold only the spec afterwards). Never exit 2, never a signal.
#
#   file size limit   ulimit -f at sizes that stop the weights blob, the
#                     object file LLVM writes (just over the blob, which it
#                     embeds) and the link; embedded and --external-weights
#   full disk         the output and TMPDIR on a small tmpfs (a user
#                     namespace, unshare -rm; skipped where not allowed)
#   out of memory     ulimit -v from 300 MB to 2.3 GB on a network of
#                     227 M parameters (0.9 GB of weights, two copies while
#                     packing, LLVM reading the blob to embed it)
set -u
cnncc=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
fail=0 runs=0
bad() { echo "FAIL: $*"; fail=1; }

cat >"$work/mid.yaml" <<'EOF'
cnncc: 1
name: mid
inputs:
  x: [64, 8, 8]
layers:
  - {name: c1, op: conv2d, out: 256, kernel: 3, pad: 1}
  - {name: c2, op: conv2d, out: 256, kernel: 3, pad: 1}
EOF
cat >"$work/big.yaml" <<'EOF'
cnncc: 1
name: big
inputs:
  x: [64, 8, 8]
layers:
  - {name: c1, op: conv2d, out: 1024, kernel: 3, pad: 1}
  - {name: c2, op: conv2d, out: 4096, kernel: 3, pad: 1}
  - {name: c3, op: conv2d, out: 4096, kernel: 3, pad: 1}
  - {name: c4, op: conv2d, out: 1024, kernel: 3, pad: 1}
EOF

# One compile in a fresh directory d, through `sh -c "LIMIT; cnncc ..."`;
# checks the exit status, the message and what is left.
#   run NAME 'ulimit -f 100' 'File too large' ARGS...
run() {
  local name=$1 limit=$2 expect=$3
  shift 3
  local d="$work/$name"
  rm -rf "$d" && mkdir -p "$d/tmp"
  cp "$work/mid.yaml" "$work/big.yaml" "$d/"
  local out rc
  out=$(cd "$d" && sh -c "$limit; TMPDIR='$d/tmp' exec '$cnncc' \"\$@\" -q" sh "$@" 2>&1)
  rc=$?
  runs=$((runs + 1))
  local left
  left=$(cd "$d" && find . -mindepth 1 ! -name mid.yaml ! -name big.yaml ! -name tmp \
           ! -name '*.so' ! -name '*.so.weights' | sort | tr '\n' ' ')
  if [ "$rc" -eq 0 ]; then
    echo "ok   $name: compiled ($limit)"
  elif [ "$rc" -eq 1 ] && [[ "$out" == *"$expect"* ]]; then
    echo "ok   $name: exit 1: $(echo "$out" | head -1)"
    [ -z "$(ls "$d" | grep -E '\.so($|\.weights$)')" ] || bad "$name: an output after exit 1: $(ls "$d")"
  else
    bad "$name: exit $rc ($limit), wanted 0 or 1 with '$expect': $out"
  fi
  [ -z "$left" ] || bad "$name: left behind: $left"
}

# ---------------------------------------------------------------- ulimit -f
# sizes of mid's weights blob and object file, in 1 KB blocks (ulimit -f)
mkdir -p "$work/sizes" && cp "$work/mid.yaml" "$work/sizes/"
(cd "$work/sizes" && "$cnncc" mid.yaml -q --external-weights -o mid.so &&
   "$cnncc" mid.yaml -q --emit=obj -o mid.o) || bad "cannot compile mid.yaml"
blob_kb=$(( ($(stat -c %s "$work/sizes/mid.so.weights") + 1023) / 1024 ))
obj_kb=$(( $(stat -c %s "$work/sizes/mid.o") / 1024 ))
echo "mid: weights blob ${blob_kb} KB, object file ${obj_kb} KB"
for kb in 64 $((blob_kb / 2)) $((blob_kb - 1)) $((blob_kb + 1)) $((obj_kb + 2)) $((obj_kb + 40)); do
  run "fsize-$kb" "ulimit -f $kb" "File too large" mid.yaml -o out.so
  run "fsize-ext-$kb" "ulimit -f $kb" "File too large" mid.yaml --external-weights -o out.so
done

# ---------------------------------------------------------------- full disk
if unshare --user --map-root-user --mount true 2>/dev/null; then
  for kb in 256 $((blob_kb + 64)) $((obj_kb + 200)); do
    d="$work/full-$kb"
    rm -rf "$d" && mkdir -p "$d/disk"
    cp "$work/mid.yaml" "$d/"
    out=$(unshare --user --map-root-user --mount sh -c "
      mount -t tmpfs -o size=${kb}k tmpfs '$d/disk' || exit 99
      mkdir '$d/disk/tmp'
      TMPDIR='$d/disk/tmp' '$cnncc' '$d/mid.yaml' -q -o '$d/disk/out.so'
      echo \"rc=\$?\"
      echo \"left=\$(cd '$d/disk' && find . -mindepth 1 ! -name tmp ! -name out.so | tr '\n' ' ')\"" 2>&1)
    runs=$((runs + 1))
    rc=$(echo "$out" | sed -n 's/^rc=//p')
    left=$(echo "$out" | sed -n 's/^left=//p')
    if [ "$rc" = 0 ]; then
      echo "ok   full-$kb: compiled"
    elif [ "$rc" = 1 ] && [[ "$out" == *"No space left on device"* ]]; then
      echo "ok   full-$kb: exit 1: $(echo "$out" | head -1)"
    else
      bad "full-$kb: $out"
    fi
    [ -z "$left" ] || bad "full-$kb: left on the disk: $left"
  done
else
  echo "skip full disk: unshare -rm is not allowed here"
fi

# ---------------------------------------------------------------- ulimit -v
for mb in 300 600 900 1200 1500 1700 1800 1900 2100 2300; do
  run "mem-$mb" "ulimit -v $((mb * 1024))" "out of memory" big.yaml -o out.so
done

echo "faults_cli: $runs compiles, $([ $fail = 0 ] && echo 'all as they should be' || echo FAILED)"
exit $fail
