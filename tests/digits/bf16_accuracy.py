#!/usr/bin/env python3
"""bf16_accuracy.py: the digits demo's LeNet-5 compiled with --precision=bf16
keeps its accuracy (docs/precision.md).

    bf16_accuracy.py CNN_DIGITS MODEL.so DATA_DIR

Runs `cnn_digits MODEL.so DATA_DIR --show 0`, reads its "accuracy: K/N"
line, and counts PyTorch's fp32 correct answers on the same held-out digits
from DATA_DIR (torch_pred.i32 against test_labels.i32, both written by
examples/digits/train_digits.py). Passes when the two counts differ by at
most 1; cnn_digits's own exit status (1 when any prediction differs from
PyTorch's) is reported but not required, since bf16 weights may flip one
close call.
"""
import os
import re
import subprocess
import sys
from array import array


def read_i32(data, name):
    """A file of little-endian int32s (this machine's order) as a list."""
    a = array("i")
    with open(os.path.join(data, name), "rb") as f:
        a.frombytes(f.read())
    return list(a)


def main():
    exe, model, data = sys.argv[1:4]
    labels, torch_pred = read_i32(data, "test_labels.i32"), read_i32(data, "torch_pred.i32")
    if not labels or len(labels) != len(torch_pred):
        sys.exit(f"bad data in {data}: {len(labels)} labels, {len(torch_pred)} predictions")
    torch_right = sum(1 for a, b in zip(labels, torch_pred) if a == b)
    run = subprocess.run([exe, model, data, "--show", "0"], capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    m = re.search(r"^accuracy: (\d+)/(\d+)", run.stdout, re.M)
    if not m:
        sys.exit(f"no accuracy line from {exe} (exit {run.returncode})")
    ours, n = int(m.group(1)), int(m.group(2))
    if n != len(labels):
        sys.exit(f"{exe} classified {n} digits, the data has {len(labels)}")
    print(f"bf16: {ours}/{n} correct, PyTorch fp32: {torch_right}/{n} "
          f"(cnn_digits exit {run.returncode})")
    if abs(ours - torch_right) > 1:
        sys.exit(f"FAIL: bf16 accuracy {ours}/{n} is more than 1 from PyTorch's {torch_right}/{n}")
    print("PASS: within 1 of PyTorch's count")


if __name__ == "__main__":
    main()
