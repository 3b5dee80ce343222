#!/usr/bin/env python3
"""Random F32 weights for any spec, from the parameter list cnncc prints.

    make_weights_for.py CNNCC SPEC.yaml OUT.safetensors [SEED]

Runs `CNNCC SPEC -O0 --emit=ir -o -`, whose nodes list their parameters as
`"NAME" ... [weight 64x3x11x11, bias 64]`, and writes a safetensors file
with one tensor "NAME.PARAM" per entry: uniform in [-0.05, 0.05), except
running_var in [0.5, 1.5). Needs numpy (the test uses /usr/bin/python3).
AlexNet (examples/alexnet.yaml) gives 244 MB.
"""
import json
import re
import struct
import subprocess
import sys

import numpy as np


def params(cnncc, spec):
    ir = subprocess.run([cnncc, spec, "-O0", "--emit=ir", "-o", "-", "-q"],
                        check=True, capture_output=True, text=True).stdout
    out = []
    for line in ir.splitlines():
        m = re.search(r'^\s*%\d+ \S+ "([^"]+)".*\[([^\]]*)\]', line)
        if not m:
            continue
        for item in m.group(2).split(","):
            pname, dims = item.split()
            shape = [int(x) for x in dims.split("x")]
            out.append((m.group(1) + "." + pname, shape))
    return out


def main():
    cnncc, spec, path = sys.argv[1:4]
    rng = np.random.default_rng(int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    header, blobs, off = {}, [], 0
    for name, shape in params(cnncc, spec):
        if name.endswith(".running_var"):
            a = rng.uniform(0.5, 1.5, size=shape)
        else:
            a = rng.uniform(-0.05, 0.05, size=shape)
        b = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print(f"{path}: {len(header)} tensors, {off / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
