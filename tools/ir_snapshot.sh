#!/usr/bin/env bash
# Writes the emitted LLVM IR (--emit=llvm) of every example spec into DIR, for
# several optimization levels and target CPUs, so that a refactoring can prove
# it leaves the generated code alone:
#   tools/ir_snapshot.sh /tmp/before     # on the old commit
#   tools/ir_snapshot.sh /tmp/after      # on the new one
#   diff -r /tmp/before /tmp/after       # empty, or every difference explained
# The target CPU is always explicit (the host's name differs between machines).
# CNNCC (default build/cnncc) picks the compiler; JOBS (default nproc) the
# parallelism. The packed weights blob of each module is kept as its sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tools/ir_snapshot.sh DIR}
cnncc=${CNNCC:-build/cnncc}
jobs=${JOBS:-$(nproc)}
mkdir -p "$out"
configs=(
  "O2-avx512|-O2 --target-cpu=skylake-avx512"
  "O3-avx512|-O3 --target-cpu=skylake-avx512"
  "O0-avx512|-O0 --target-cpu=skylake-avx512"
  "O2-nowino-avx512|-O2 --winograd=off --target-cpu=skylake-avx512"
  "O2-v3|-O2 --target-cpu=x86-64-v3"
  "O2-v2|-O2 --target-cpu=x86-64-v2"
)
jobsfile=$(mktemp)
trap 'rm -f "$jobsfile"' EXIT
for spec in examples/*.yaml; do
  name=$(basename "$spec" .yaml)
  for c in "${configs[@]}"; do
    tag=${c%%|*}
    flags=${c#*|}
    printf '%s\t%s\t%s\n' "$spec" "$out/$name.$tag.ll" "$flags" >>"$jobsfile"
  done
done
export cnncc
# shellcheck disable=SC2016
xargs -P "$jobs" -L 1 -d '\n' bash -c '
  IFS=$'"'"'\t'"'"' read -r spec dst flags <<<"$0"
  # shellcheck disable=SC2086
  "$cnncc" "$spec" $flags -q --emit=llvm -o "$dst" 2>"$dst.err" || { echo "FAILED: $spec $flags"; cat "$dst.err"; }
  rm -f "$dst.err"
  # The packed weights: keep their checksum only.
  if [ -f "$dst.blob" ]; then
    sha256sum <"$dst.blob" | cut -d" " -f1 >"$dst.blob.sha256"
    rm -f "$dst.blob"
  fi' <"$jobsfile"
# Make the .incbin path independent of DIR so that two snapshots diff cleanly.
perl -pi -e 's{\\22[^"]*/([^/"]*\.blob)\\22}{\\22$1\\22}' "$out"/*.ll
echo "ir_snapshot: $(ls "$out"/*.ll | wc -l) modules in $out"
