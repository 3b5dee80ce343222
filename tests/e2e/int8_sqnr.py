#!/usr/bin/python3
"""int8_sqnr.py: how far --precision=int8 moves a zoo network's output, as
an SQNR in dB against PyTorch's fp32 output (docs/precision.md).

    int8_sqnr.py CNNCC NETWORK DATA_DIR MIN_DB [--calib N] [--method M]
                 [--torch-ptq] [--keep DIR]

DATA_DIR is the network's end-to-end reference directory (tests/e2e/
make_ref.py: weights.safetensors, manifest.json, input_bK.bin and PyTorch's
fp32 output_bK.bin). The script writes N calibration inputs (default 16)
drawn as make_ref.make_input draws the reference inputs but from another
seed (so the inputs measured are not the ones calibrated on) into a .npy,
compiles the network with cnncc twice (fp32, and --precision=int8
--calibrate that file), runs both on the reference input of the largest
batch through the cnncc Python module, and prints

    SQNR = 10 log10( sum ref^2 / sum (out - ref)^2 )

for each. It fails when the int8 SQNR is below MIN_DB (the documented
floor) or the fp32 one is below 60 dB (then the comparison itself is
wrong).

--torch-ptq also quantizes the same PyTorch model (make_ref.build) with
PyTorch's own post-training static quantization (FX graph mode,
torch.ao.quantization default qconfig of the x86 engine, calibrated on the
same inputs) and prints its SQNR on the same input, for comparison. This
torch 1.13 build has no fbgemm engine (supported: qnnpack, onednn), so the
x86 engine used is onednn; its default qconfig is the same recipe
(histogram-observed u8 activations, per-channel symmetric s8 weights).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def sqnr(ref, out):
    ref, out = np.asarray(ref, np.float64).ravel(), np.asarray(out, np.float64).ravel()
    noise = np.sum((out - ref) ** 2)
    return float("inf") if noise == 0 else 10.0 * np.log10(np.sum(ref ** 2) / noise)


def run_so(path, x):
    import cnncc
    with cnncc.load(path, threads=1) as m:
        return np.array(m(x), dtype=np.float32)


def torch_ptq(network, calib, x):
    """PyTorch's own int8 of the same model: FX prepare, calibrate, convert."""
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    import make_ref
    make_ref.load_torch()
    model, _ = make_ref.build(network)
    engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "onednn"
    torch.backends.quantized.engine = engine
    qmap = get_default_qconfig_mapping(engine)
    with torch.no_grad():
        prepared = prepare_fx(model, qmap, (torch.from_numpy(calib[:1]),))
        for i in range(len(calib)):
            prepared(torch.from_numpy(calib[i:i + 1]))
        q = convert_fx(prepared)
        return engine, q(torch.from_numpy(x)).numpy()


def calibration_inputs(shape, n):
    import torch
    import make_ref
    make_ref.load_torch()
    torch.manual_seed(4321)  # not 1234, the reference inputs' seed
    return make_ref.make_input(n, tuple(shape)).numpy().astype("<f4")


def compile_so(cnncc, spec, weights, out, extra):
    cmd = [cnncc, spec, "--weights", weights, "-q", "-o", out] + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"FAIL: {' '.join(cmd)}: exit {r.returncode}\n{r.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cnncc")
    ap.add_argument("network")
    ap.add_argument("data")
    ap.add_argument("min_db", type=float)
    ap.add_argument("--calib", type=int, default=16)
    ap.add_argument("--method", default=None)
    ap.add_argument("--torch-ptq", action="store_true")
    ap.add_argument("--keep", default=None)
    a = ap.parse_args()
    man = json.load(open(os.path.join(a.data, "manifest.json")))
    case = max(man["cases"], key=lambda c: c["batch"])
    shape = man["input_shape"]
    x = np.fromfile(os.path.join(a.data, case["input"]), "<f4").reshape(case["batch"], *shape)
    ref = np.fromfile(os.path.join(a.data, case["output"]), "<f4")
    spec = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples", a.network + ".yaml")
    weights = os.path.join(a.data, man["weights"])
    calib = calibration_inputs(shape, a.calib)
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or tmp
        np.save(os.path.join(d, "calib.npy"), calib)
        extra = ["--precision=int8", "--calibrate=" + os.path.join(d, "calib.npy")]
        if a.method:
            extra.append("--calibrate-method=" + a.method)
        compile_so(a.cnncc, spec, weights, os.path.join(d, "fp32.so"), [])
        compile_so(a.cnncc, spec, weights, os.path.join(d, "int8.so"), extra)
        s32 = sqnr(ref, run_so(os.path.join(d, "fp32.so"), x))
        s8 = sqnr(ref, run_so(os.path.join(d, "int8.so"), x))
    line = (f"{a.network}: SQNR against PyTorch fp32 (batch {case['batch']}, calibrated on "
            f"{a.calib}): cnncc int8 {s8:.1f} dB, cnncc fp32 {s32:.1f} dB")
    if a.torch_ptq:
        try:
            engine, qout = torch_ptq(a.network, calib, x)
            line += f", PyTorch PTQ ({engine}) {sqnr(ref, qout):.1f} dB"
        except Exception as e:  # PyTorch cannot quantize every model
            line += f", PyTorch PTQ: n/a ({type(e).__name__}: {str(e).splitlines()[0][:80]})"
    print(line)
    if s32 < 60:
        sys.exit(f"FAIL: the fp32 build is only {s32:.1f} dB from the reference")
    if s8 < a.min_db:
        sys.exit(f"FAIL: int8 SQNR {s8:.1f} dB is below the floor {a.min_db} dB")
    print(f"PASS: int8 SQNR {s8:.1f} dB >= {a.min_db} dB")


if __name__ == "__main__":
    main()
