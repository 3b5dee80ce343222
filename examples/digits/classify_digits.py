#!/usr/bin/python3
"""classify_digits.py: the Python twin of classify_digits.c (build/cnn_digits).

    /usr/bin/python3 examples/digits/classify_digits.py MODEL.so [DATA_DIR]
                     [--show N] [--batch N] [--threads N]

Classifies the held-out handwritten digits that
examples/digits/train_digits.py wrote into DATA_DIR (default out/digits)
with a LeNet-5 compiled by cnncc, through the Python module cnncc (numpy
in, numpy out), and prints the same report as the C host: the time, the
first --show digits (default 4) and the first mistake as pictures with
their predicted and true labels, the accuracy, and whether every
prediction equals PyTorch's. Exit status 0, or 1 if anything fails or a
prediction differs from PyTorch's.

The files (raw little-endian): test_images.f32 (N x 1 x 32 x 32 float32),
test_labels.i32, and, when present, torch_pred.i32 (PyTorch's predictions)
and test_digits8.u8 (the original 8x8 scans, for the pictures).
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
try:
    import cnncc
except ImportError:  # run from a source tree without the package on the path
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import cnncc

SIDE = 32
RAMP = " .:-=+*#%@"


def read(path, dtype, optional=False):
    if not os.path.exists(path):
        if not optional:
            sys.exit(f"classify_digits.py: cannot open {path} "
                     "(run examples/digits/train_digits.py first)")
        return None
    return np.fromfile(path, dtype=dtype)


def load_digits(d):
    images = read(os.path.join(d, "test_images.f32"), "<f4")
    labels = read(os.path.join(d, "test_labels.i32"), "<i4")
    torch_pred = read(os.path.join(d, "torch_pred.i32"), "<i4", optional=True)
    d8 = read(os.path.join(d, "test_digits8.u8"), np.uint8, optional=True)
    n = len(labels)
    if n == 0 or images.size != n * SIDE * SIDE:
        sys.exit(f"classify_digits.py: {d}: {images.size * 4} bytes of images for {n} labels")
    if torch_pred is not None and len(torch_pred) != n:
        print(f"classify_digits.py: {d}/torch_pred.i32 has the wrong size; ignored",
              file=sys.stderr)
        torch_pred = None
    if d8 is not None and d8.size != n * 64:
        d8 = None
    return images.reshape(n, 1, SIDE, SIDE), labels, torch_pred, \
        None if d8 is None else d8.reshape(n, 8, 8)


def picture_row(d8, img, row):
    """One of the 8 rows of a digit's picture, 16 characters: from the 8x8
    scan (two characters a pixel), or else averages of 4x2 input pixels."""
    if d8 is not None:
        return "".join(RAMP[int(v) * 9 // 16] * 2 for v in d8[row])
    out = []
    for c in range(16):
        s = np.float32(0)
        for y in range(4):
            for x in range(2):
                s = np.float32(s + img[0, row * 4 + y, c * 2 + x])
        k = int(np.float32(np.float32(s / np.float32(8)) * np.float32(9.99)))
        out.append(RAMP[min(max(k, 0), 9)])
    return "".join(out)


def draw(idx, d8, images, pred, labels):
    print("".join(f"{'  #%d' % i:<20}" for i in idx))
    for r in range(-1, 9):
        if r in (-1, 8):
            print("  +----------------+" * len(idx))
            continue
        print("".join(f"  |{picture_row(None if d8 is None else d8[i], images[i], r)}|"
                      for i in idx))
    print("".join(f"{'  pred %d true %d%s' % (pred[i], labels[i], '' if pred[i] == labels[i] else '  X'):<20}"
                  for i in idx))
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("data", nargs="?", default="out/digits")
    ap.add_argument("--show", type=int, default=4)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()

    images, labels, torch_pred, d8 = load_digits(a.data)
    n = len(labels)
    with cnncc.load(a.model, threads=a.threads) as m:
        i, o = m.info["inputs"], m.info["outputs"]
        if len(i) != 1 or i[0]["shape"] != (1, 1, SIDE, SIDE) or o[0]["shape"] != (1, 10):
            sys.exit(f"classify_digits.py: {a.model} is not a 1x32x32 -> 10 classifier "
                     "(see examples/lenet5.yaml)")
        batch = a.batch if 0 < a.batch <= n else n
        t0 = time.perf_counter()
        scores = np.concatenate([m(images[k:k + batch]) for k in range(0, n, batch)])
        ms = (time.perf_counter() - t0) * 1e3
        name = m.info["name"]
    pred = scores.argmax(axis=1)  # the first of equal scores, as the C host

    print(f"{name} ({a.model}): {n} held-out digits in {ms:.1f} ms\n")
    for s in range(0, min(a.show, n), 4):
        draw(list(range(s, min(s + 4, a.show, n))), d8, images, pred, labels)
    wrong = np.flatnonzero(pred != labels)
    if a.show > 0 and len(wrong) and wrong[0] >= a.show:
        print("the first mistake:")
        draw([int(wrong[0])], d8, images, pred, labels)
    right = int((pred == labels).sum())
    print(f"accuracy: {right}/{n} = {100.0 * right / n:.2f}%")
    if torch_pred is None:
        return 0
    differ = np.flatnonzero(pred != torch_pred)
    if len(differ) == 0:
        print(f"same prediction as PyTorch on all {n} digits")
        return 0
    f = int(differ[0])
    print(f"DIFFERENT from PyTorch on {len(differ)} of {n} digits (first: #{f}, cnncc {pred[f]}, "
          f"PyTorch {torch_pred[f]})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
