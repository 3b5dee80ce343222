#!/usr/bin/python3
"""Safetensors files for the weights diagnostics in tests/diag/cases/.

    python3 tests/diag/make_weights.py OUTDIR

Writes OUTDIR/NAME.safetensors for every NAME below, all for the network
of cases/weights.yaml (conv: 4x1x3x3 + 4, fc: 3x256 + 3). Pure Python
(struct + json, no numpy/torch), so it runs anywhere in milliseconds. Each
file is valid except for the one defect its name says.
"""
import json
import os
import struct
import sys

GOOD = {"conv.weight": [4, 1, 3, 3], "conv.bias": [4],
        "fc.weight": [3, 256], "fc.bias": [3]}
SIZE = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def build(tensors, header_extra=None):
    """tensors: list of (name, dtype, shape). Data: bytes of 0x00."""
    header, off = {}, 0
    for name, dtype, shape in tensors:
        n = numel(shape) * SIZE[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    if header_extra:
        header.update(header_extra)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(off)


def f32(names):
    return [(n, "F32", GOOD[n]) for n in names]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    all4 = list(GOOD)
    files = {
        "good": build(f32(all4)),
        # fc.bias absent
        "missing": build(f32(["conv.weight", "conv.bias", "fc.weight"])),
        # an extra tensor, close to the name of a parameter that has its
        # tensor (so it is no misspelling of it)
        "unexpected": build(f32(all4) + [("fc.biass", "F32", [3])]),
        # fc.bias misspelled: missing, and an unexpected tensor that is it
        "misnamed": build(f32(["conv.weight", "conv.bias", "fc.weight"]) +
                          [("fc.bais", "F32", [3])]),
        # conv.weight for 2 input channels
        "misshaped": build([("conv.weight", "F32", [4, 2, 3, 3])] +
                           f32(["conv.bias", "fc.weight", "fc.bias"])),
        # fc.weight for 512 input features (the spec's fc gets 256)
        "fc_inputs": build(f32(["conv.weight", "conv.bias", "fc.bias"]) +
                           [("fc.weight", "F32", [3, 512])]),
        # an integer tensor
        "dtype": build([("conv.weight", "I64", [4, 1, 3, 3])] +
                       f32(["conv.bias", "fc.weight", "fc.bias"])),
        # several defects at once: conv.bias absent, fc.weight transposed,
        # two tensors of another network
        "several": build(f32(["conv.weight", "fc.bias"]) +
                         [("fc.weight", "F32", [256, 3]),
                          ("head.weight", "F32", [3, 3]), ("head.bias", "F32", [3])]),
        # another network's file, 60 tensors of names the spec does not
        # have: more errors than cnncc shows (DIAG_MAX_ERRORS, 50)
        "many": build(f32(all4) + [("features.%d.weight" % i, "F32", [4])
                                   for i in range(60)]),
        # the data area cut short
        "truncated": build(f32(all4))[:-100],
        # header length beyond the end of the file
        "header_length": struct.pack("<Q", 1 << 40) + b"{}      ",
        # not JSON
        "header_json": struct.pack("<Q", 16) + b'{"conv.weight":,',
        # shorter than the 8-byte length
        "tiny": b"\x10\x00",
    }
    for name, data in files.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
