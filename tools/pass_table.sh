#!/usr/bin/env bash
# Prints the per-network table of docs/passes.md: convs and kernel launches
# before and after the passes, and activation memory (naive, planned, lower
# bound), for every examples/*.yaml, from `cnncc --stats` at the given level.
#   tools/pass_table.sh [build/cnncc] [-O2]
set -euo pipefail
cd "$(dirname "$0")/.."
cnncc=${1:-build/cnncc}
opt=${2:--O2}
mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
echo "| network | convs before → after | kernels before → after | naive MB | planned MB | lower bound MB | planned / bound |"
echo "|---|---|---|---|---|---|---|"
for spec in examples/*.yaml; do
  name=$(basename "$spec" .yaml)
  out=$("$cnncc" "$spec" "$opt" --stats --emit=ir -o /dev/null -q 2>&1) || { echo "| $name | failed | | | | | |"; continue; }
  k=$(grep '^kernels:' <<<"$out")
  kafter=$(sed -E 's/kernels: ([0-9]+) launched.*/\1/' <<<"$k")
  cafter=$(sed -E 's/.*launched per sample \(([0-9]+) convs\).*/\1/' <<<"$k")
  kbefore=$(sed -E 's/.*as written: ([0-9]+) \(.*/\1/' <<<"$k")
  cbefore=$(sed -E 's/.*as written: [0-9]+ \(([0-9]+) convs\).*/\1/' <<<"$k")
  m=$(grep '^plan-memory:' <<<"$out")
  naive=$(sed -E 's/.*naive ([0-9]+) bytes.*/\1/' <<<"$m")
  planned=$(sed -E 's/.*planned ([0-9]+) bytes.*/\1/' <<<"$m")
  lb=$(sed -E 's/.*lower bound ([0-9]+) bytes.*/\1/' <<<"$m")
  ratio=$(awk -v p="$planned" -v l="$lb" 'BEGIN { printf "%.3f", p / l }')
  echo "| $name | $cbefore → $cafter | $kbefore → $kafter | $(mb "$naive") | $(mb "$planned") | $(mb "$lb") | $ratio |"
done
