#!/usr/bin/env python3
"""Writes the safetensors seed corpus (tests/fuzz/seeds/safetensors/).

Small, valid files covering each convertible dtype, metadata, empty and
zero-sized tensors, gaps between tensors, and a dtype cnncc cannot convert.
Run it again only to change the seeds; its output is committed.
"""
import json, os, struct, sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "safetensors")
os.makedirs(out, exist_ok=True)

ITEM = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "U8": 1, "BOOL": 1}

def write(name, tensors, metadata=None, gap=0, pad=True):
    hdr, data = {}, b""
    if metadata is not None:
        hdr["__metadata__"] = metadata
    for tname, dtype, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        nbytes = n * ITEM[dtype]
        data += b"\0" * gap
        begin = len(data)
        data += bytes((i * 37 + 11) & 0xff for i in range(nbytes))
        hdr[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, len(data)]}
    text = json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)

write("f32_conv.safetensors", [("conv.weight", "F32", [2, 3, 1, 1]), ("conv.bias", "F32", [2])])
write("f16_bf16_f64.safetensors", [("a", "F16", [3]), ("b", "BF16", [2, 2]), ("c", "F64", [2])])
write("metadata.safetensors", [("fc.weight", "F32", [2, 2])], metadata={"format": "pt"})
write("empty.safetensors", [])
write("zero_sized.safetensors", [("z", "F32", [0, 4]), ("s", "F32", [])])
write("gaps.safetensors", [("x", "F32", [2]), ("y", "F16", [2])], gap=4)
write("other_dtypes.safetensors", [("bn.num_batches_tracked", "I64", []), ("m", "U8", [3]), ("k", "BOOL", [1])])
write("unpadded.safetensors", [("w", "BF16", [1, 1, 2, 2])], pad=False)
write("bn.safetensors", [("bn.weight", "F32", [4]), ("bn.bias", "F32", [4]),
                         ("bn.running_mean", "F32", [4]), ("bn.running_var", "F32", [4])])
# every parameter of fuzz_safetensors.c's graph, in each float dtype
write("binds.safetensors", [("conv.weight", "F32", [4, 3, 1, 1]), ("conv.bias", "F16", [4]),
                            ("bn.weight", "BF16", [4]), ("bn.bias", "F64", [4]),
                            ("bn.running_mean", "F32", [4]), ("bn.running_var", "F32", [4]),
                            ("bn.num_batches_tracked", "I64", []),
                            ("fc.weight", "F32", [2, 2]), ("fc.bias", "F32", [2])],
      metadata={"format": "pt"})
print("wrote", len(os.listdir(out)), "seeds to", out)
