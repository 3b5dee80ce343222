#!/bin/sh
# zoo_table.sh: the table of docs/zoo.md, measured on this machine.
#
#   tools/zoo_table.sh [BUILD_DIR] [NET ...]  > table.md
#   tools/zoo_table.sh --update-doc [BUILD_DIR]    (rewrites the table in docs/zoo.md)
#
# For every network spec examples/NET.yaml (or the NETs given) it prints one
# Markdown row:
#   parameters, GMAC per sample  from `cnncc --summary` (PyTorch's counting)
#   activations (naive)          the summary's sum of all activation tensors
#                                of one sample, as if none shared memory
#   arena (planned)              cnn_info.arena_bytes of the compiled .so:
#                                the activation memory one sample really uses
#   compile                      wall time of `cnncc SPEC -o NET.so` (seeded
#                                weights, no --weights file; embeds weights)
#   latency                      build/cnn_host NET.so --batch 1: median of
#                                RUNS runs (default 5) with 1 thread and with
#                                the default thread count (one per core)
# Environment: CNNCC_FLAGS  extra cnncc options (e.g. --passes=...),
#              RUNS         runs per latency (default 5),
#              TMPDIR       where the .so files go (deleted afterwards).
# Needs only sh, awk and the build (cnncc, cnn_host).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
update=0
if [ "${1:-}" = "--update-doc" ]; then
  update=1
  shift
fi
BUILD=${1:-$ROOT/build}
[ $# -gt 0 ] && shift
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
CNNCC=$BUILD/cnncc
HOST=$BUILD/cnn_host
RUNS=${RUNS:-5}
FLAGS=${CNNCC_FLAGS:-}
for exe in "$CNNCC" "$HOST"; do
  [ -x "$exe" ] || { echo "zoo_table.sh: no $exe (build first)" >&2; exit 1; }
done

if [ $# -gt 0 ]; then
  NETS=$*
else
  # the zoo in the order of the lecture, then anything else in examples/
  NETS="lenet5 alexnet alexnet_lecture zfnet vgg16 vgg19 googlenet inception_v4
        resnet18 resnet34 resnet50 resnet101 resnet152 preact_resnet18
        preact_resnet164 wide_resnet50_2 wrn28_10 resnext50_32x4d
        stochastic_depth fractalnet densenet121 densenet201 nin
        squeezenet1_0 squeezenet1_1 shufflenet_v2_x1_0 regnet_y_400mf
        regnet_x_1_6gf inception_v3 convnext_tiny"
  for f in "$ROOT"/examples/*.yaml; do
    n=$(basename "$f" .yaml)
    case " $(echo $NETS) " in *" $n "*) ;; *) NETS="$NETS $n" ;; esac
  done
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zoo-table.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

now() { date +%s.%N; }

table() {
  echo "| network | input | parameters | GMAC | activations (naive) | arena (planned) | compile | latency, 1 thread | latency, default threads |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  for n in $NETS; do
    spec=$ROOT/examples/$n.yaml
    [ -f "$spec" ] || { echo "zoo_table.sh: no $spec" >&2; continue; }
    sum=$("$CNNCC" --summary "$spec" 2>/dev/null) || { echo "| $n | summary failed |"; continue; }
    input=$(echo "$sum" | awk '$2 == "input" { print $3; exit }')
    stats=$(echo "$sum" | awk '/^parameters:/ {
        for (i = 1; i <= NF; i++) {
          if ($i == "parameters:") p = $(i + 1)
          if ($i == "MACs:") m = $(i + 1)
          if ($i == "activations:") { a = $(i + 1); u = $(i + 2) }
        }
        if (u == "KB") a /= 1024; else if (u == "B") a /= 1048576
        printf "%s %.4g %.1f MB\n", p, m / 1e9, a }')
    set -- $stats
    params=$(echo "$1" | awk '{ s = $1; o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }')
    gmac=$2
    act="$3 $4"
    t0=$(now)
    if ! "$CNNCC" "$spec" $FLAGS -o "$tmp/$n.so" >"$tmp/$n.log" 2>&1; then
      err=$(grep -m1 error "$tmp/$n.log" | tr '|' '/')
      echo "| $n | $input | $params | $gmac | $act | compile failed: $err | | | |"
      continue
    fi
    t1=$(now)
    ctime=$(echo "$t0 $t1" | awk '{ printf "%.1f s", $2 - $1 }')
    one=$("$HOST" "$tmp/$n.so" --runs "$RUNS" --threads 1 2>&1) || true
    all=$("$HOST" "$tmp/$n.so" --runs "$RUNS" 2>&1) || true
    arena=$(echo "$one" | awk '$1 == "arena" { print ($2 < 0.1 ? "<0.1" : $2) " " $3 }')
    lat1=$(echo "$one" | awk '$1 == "latency" { print $2 " ms" }')
    latn=$(echo "$all" | awk '$1 == "latency" { print $2 " ms" }')
    echo "| $n | $input | $params | $gmac | $act | ${arena:-?} | $ctime | ${lat1:-failed} | ${latn:-failed} |"
    rm -f "$tmp/$n.so"
  done
}

if [ $update -eq 0 ]; then
  table
  exit 0
fi

doc=$ROOT/docs/zoo.md
begin='<!-- zoo_table.sh: begin -->'
end='<!-- zoo_table.sh: end -->'
grep -q "$begin" "$doc" || { echo "zoo_table.sh: no '$begin' in $doc" >&2; exit 1; }
table > "$tmp/table.md"
{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), RUNS=$RUNS${FLAGS:+, CNNCC_FLAGS='$FLAGS'}; $("$CNNCC" --version 2>&1 | head -1)."
  echo
  cat "$tmp/table.md"
} > "$tmp/block.md"
awk -v b="$begin" -v e="$end" -v f="$tmp/block.md" '
  $0 == b { print; while ((getline l < f) > 0) print l; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }' "$doc" > "$tmp/zoo.md"
cp "$tmp/zoo.md" "$doc"
echo "zoo_table.sh: updated $doc" >&2
