#!/usr/bin/env bash
# The Python twin of cnn_digits prints the same report, so it makes the
# same 360 predictions (the pictures show each prediction, the accuracy
# counts them, the last line compares them all with PyTorch's):
#   tests/digits/same_report.sh CNN_DIGITS SOURCE_DIR MODEL.so DATA_DIR WORK_DIR
# Both run with the defaults, with --show 9 --batch 50 --threads 1, and on a
# copy of the data without the 8x8 scans (pictures drawn from the 32x32
# inputs); only the time on the first line may differ.
set -euo pipefail
c=$1 src=$2 so=$3 data=$4 work=$5
py=(/usr/bin/python3 "$src/examples/digits/classify_digits.py")
rm -rf "$work"
mkdir -p "$work/no8"
cp "$data"/test_images.f32 "$data"/test_labels.i32 "$data"/torch_pred.i32 "$work/no8/"
n=0
run_both() { # args after MODEL.so
  n=$((n + 1))
  "$c" "$so" "$@" | sed '1s/ in [0-9.]* ms$//' >"$work/c$n.txt"
  PYTHONPATH=${PYTHONPATH:-} "${py[@]}" "$so" "$@" | sed '1s/ in [0-9.]* ms$//' >"$work/py$n.txt"
  if ! diff -u "$work/c$n.txt" "$work/py$n.txt"; then
    echo "same-report: cnn_digits and classify_digits.py differ ($*)"
    exit 1
  fi
  echo "same-report: the same $(wc -l <"$work/c$n.txt") lines ($*): $(tail -1 "$work/c$n.txt")"
}
run_both "$data"
run_both "$data" --show 9 --batch 50 --threads 1
run_both "$work/no8" --show 5
grep -q "same prediction as PyTorch on all 360 digits" "$work/py1.txt"
