#!/usr/bin/python3
"""Train LeNet-5 (examples/lenet5.yaml) on scikit-learn's handwritten digits.

    /usr/bin/python3 examples/digits/train_digits.py [OUTDIR] [--epochs N] [--seed S]

The data set is sklearn.datasets.load_digits(): 1,797 scanned digits, 8x8
pixels, gray levels 0..16, bundled with scikit-learn (no download). The
split is seeded and stratified: 80% to train on, 20% (360 images) held out.

LeNet-5 wants a 1x32x32 image. Each 8x8 digit becomes one in three steps:
  1. scale the gray levels to [0, 1] (divide by 16);
  2. resize 8x8 -> 28x28 with bilinear interpolation (torch's
     interpolate, align_corners=False), the size of an MNIST digit;
  3. pad with 2 pixels of 0 on every side -> 32x32, as LeCun et al. padded
     MNIST's 28x28 digits for LeNet-5.
The C host reads the already-prepared 32x32 images: it needs no resizing.

Training is Adam with a cosine learning-rate schedule on the PyTorch twin of the spec (tests/e2e/lenet5.py,
whose state_dict names c1.weight ... output.bias are the spec's parameter
names), single-threaded and seeded: the same weights on every run, in a few
seconds. The script prints PyTorch's held-out accuracy and writes to OUTDIR
(default out/digits):

    lenet5.safetensors  trained weights, float32 (cnncc --weights)
    test_images.f32     the held-out images, N x 1 x 32 x 32 raw little-endian float32
    test_labels.i32     their true labels, N raw little-endian int32
    torch_pred.i32      PyTorch's predicted label for each, N int32
    test_digits8.u8     the original 8x8 gray levels (0..16), N x 64 bytes
    train_images.f32    the training images, as test_images.f32 (the
                        calibration inputs of cnncc --precision=int8)

The safetensors writer is the end-to-end tests' (tests/e2e/make_ref.py).
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from lenet5 import LeNet5  # noqa: E402
import make_ref  # noqa: E402

# make_ref imports torch lazily; its writer needs it loaded.
if hasattr(make_ref, "load_torch"):
    make_ref.load_torch()
write_safetensors = make_ref.write_safetensors


def to_32x32(images8):
    """N x 8 x 8 gray levels 0..16 -> N x 1 x 32 x 32 float32 in [0, 1]."""
    x = torch.from_numpy(images8.astype(np.float32) / 16.0).unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear",
                                        align_corners=False)
    return torch.nn.functional.pad(x, (2, 2, 2, 2)).contiguous()


def accuracy(model, x, y):
    with torch.no_grad():
        pred = model(x).argmax(1)
    return pred, float((pred == y).float().mean())


def write_raw(path, array):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(array.tobytes())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", default=os.path.join(ROOT, "out", "digits"))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.time()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    digits = load_digits()
    idx = np.arange(len(digits.target))
    tr, te = train_test_split(idx, test_size=0.2, random_state=args.seed,
                              stratify=digits.target)
    x_all = to_32x32(digits.images)
    y_all = torch.from_numpy(digits.target.astype(np.int64))
    x_tr, y_tr, x_te, y_te = x_all[tr], y_all[tr], x_all[te], y_all[te]
    print(f"digits: {len(tr)} training images, {len(te)} held out "
          f"(8x8 -> bilinear 28x28 -> padded 32x32)")

    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(tr), generator=gen)
        total = 0.0
        for i in range(0, len(tr), 32):
            b = perm[i:i + 32]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_tr[b]), y_tr[b])
            loss.backward()
            opt.step()
            total += float(loss) * len(b)
        sched.step()
        if epoch == 0 or (epoch + 1) % 5 == 0 or epoch + 1 == args.epochs:
            model.eval()
            _, acc = accuracy(model, x_te, y_te)
            print(f"epoch {epoch + 1:2d}: loss {total / len(tr):.4f}, "
                  f"held-out accuracy {100 * acc:.2f}%")

    model.eval()
    pred, acc = accuracy(model, x_te, y_te)
    os.makedirs(args.outdir, exist_ok=True)
    write_safetensors(os.path.join(args.outdir, "lenet5.safetensors"), model.state_dict())
    write_raw(os.path.join(args.outdir, "test_images.f32"), x_te.numpy().astype("<f4"))
    write_raw(os.path.join(args.outdir, "train_images.f32"), x_tr.numpy().astype("<f4"))
    write_raw(os.path.join(args.outdir, "test_labels.i32"), y_te.numpy().astype("<i4"))
    write_raw(os.path.join(args.outdir, "torch_pred.i32"), pred.numpy().astype("<i4"))
    write_raw(os.path.join(args.outdir, "test_digits8.u8"),
              digits.images[te].astype(np.uint8))
    right = int((pred == y_te).sum())
    print(f"PyTorch: {right}/{len(te)} held-out digits right, accuracy {100 * acc:.2f}% "
          f"({time.time() - t0:.1f} s)")
    print(f"wrote {args.outdir}/lenet5.safetensors and the held-out set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
