#!/usr/bin/env python3
"""int8_accuracy.py: the digits demo's LeNet-5 compiled with --precision=int8,
calibrated on the training digits, keeps its accuracy (docs/precision.md).

    int8_accuracy.py CNN_DIGITS MODEL.so DATA_DIR [--torch-ptq]

Runs `cnn_digits MODEL.so DATA_DIR --show 0`, reads its "accuracy: K/N"
line, and counts PyTorch's fp32 correct answers on the same held-out digits
(torch_pred.i32 against test_labels.i32, written by
examples/digits/train_digits.py). Passes when the two counts differ by at
most 1% of N (3 of the 360). It also prints the SQNR in dB of the int8
logits against PyTorch's fp32 logits of the trained model (tests/e2e/
lenet5.py with DATA_DIR/lenet5.safetensors, an independent reference) and
fails below 25 dB (measured: docs/precision.md).

--torch-ptq also quantizes the trained model with PyTorch's own
post-training static quantization (FX graph mode, the x86 engine's default
qconfig: onednn, as this torch has no fbgemm), calibrated on the same
training digits, and prints its accuracy and SQNR beside ours.
"""
import os
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))


def sqnr(ref, out):
    ref, out = np.asarray(ref, np.float64).ravel(), np.asarray(out, np.float64).ravel()
    return 10.0 * np.log10(np.sum(ref ** 2) / max(np.sum((out - ref) ** 2), 1e-300))


def trained_model(data):
    import torch
    from cnncc._safetensors import load_safetensors
    from lenet5 import LeNet5
    model = LeNet5().eval()
    state = {k: torch.from_numpy(np.array(v)) for k, v in
             load_safetensors(os.path.join(data, "lenet5.safetensors")).items()}
    model.load_state_dict(state)
    return model


def torch_ptq(model, calib, x):
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "onednn"
    torch.backends.quantized.engine = engine
    with torch.no_grad():
        p = prepare_fx(model, get_default_qconfig_mapping(engine), (calib[:1],))
        for i in range(0, len(calib), 64):
            p(calib[i:i + 64])
        return engine, convert_fx(p)(x).numpy()


def main():
    exe, model_so, data = sys.argv[1:4]
    labels = np.fromfile(os.path.join(data, "test_labels.i32"), "<i4")
    torch_pred = np.fromfile(os.path.join(data, "torch_pred.i32"), "<i4")
    torch_right = int((labels == torch_pred).sum())
    run = subprocess.run([exe, model_so, data, "--show", "0"], capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    m = re.search(r"^accuracy: (\d+)/(\d+)", run.stdout, re.M)
    if not m:
        sys.exit(f"no accuracy line from {exe} (exit {run.returncode})\n{run.stderr}")
    ours, n = int(m.group(1)), int(m.group(2))
    if n != len(labels):
        sys.exit(f"{exe} classified {n} digits, the data has {len(labels)}")

    import torch
    import cnncc
    x = np.fromfile(os.path.join(data, "test_images.f32"), "<f4").reshape(-1, 1, 32, 32)
    model = trained_model(data)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    if int((ref.argmax(1) == torch_pred).sum()) != n:
        sys.exit("FAIL: the PyTorch model rebuilt from the weights does not predict torch_pred")
    with cnncc.load(model_so, threads=1) as so:
        logits = np.array(so(x), dtype=np.float32)
    s8 = sqnr(ref, logits)
    line = (f"int8: {ours}/{n} correct, PyTorch fp32: {torch_right}/{n}; "
            f"SQNR of the logits against PyTorch fp32: {s8:.1f} dB")
    if "--torch-ptq" in sys.argv[4:]:
        calib = np.fromfile(os.path.join(data, "train_images.f32"), "<f4").reshape(-1, 1, 32, 32)
        engine, q = torch_ptq(model, torch.from_numpy(calib), torch.from_numpy(x))
        line += (f"; PyTorch PTQ ({engine}): {int((q.argmax(1) == labels).sum())}/{n} correct, "
                 f"{sqnr(ref, q):.1f} dB")
    print(line)
    if abs(ours - torch_right) > n // 100:
        sys.exit(f"FAIL: int8 accuracy {ours}/{n} is more than 1% from PyTorch's {torch_right}/{n}")
    if s8 < 25:
        sys.exit(f"FAIL: SQNR {s8:.1f} dB below the floor of 25 dB")
    print("PASS: within 1% of PyTorch's count, SQNR above 25 dB")


if __name__ == "__main__":
    main()
