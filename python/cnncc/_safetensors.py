"""safetensors files, written and read by hand (json + struct + numpy).

The format (huggingface/safetensors, "Format"): 8 bytes, the length N of
the header as a little-endian unsigned 64-bit integer; N bytes of JSON, an
object mapping each tensor's name to {"dtype", "shape", "data_offsets":
[begin, end]} (offsets into the data that follows the header) plus an
optional "__metadata__" object of strings; then the data, each tensor
little-endian and C-contiguous. This writer pads the header with spaces to
a multiple of 8 bytes, so the data starts aligned, and lays the tensors
out in the order given.

Debian has no safetensors package; cnncc's --weights reads these files.
"""
import json
import os
import struct

import numpy as np

# numpy dtype -> safetensors dtype name.
_DTYPES = {
    np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("float16"): "F16",
    np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int16"): "I16",
    np.dtype("int8"): "I8", np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL",
}
_NUMPY = {v: k for k, v in _DTYPES.items()}


def _as_array(name, t):
    """(safetensors dtype, little-endian C-contiguous numpy array) of a torch
    tensor, a numpy array or anything numpy.asarray takes."""
    if hasattr(t, "detach") and hasattr(t, "cpu"):  # a torch tensor, without importing torch
        t = t.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":  # numpy has no bfloat16: its bits as int16
            return "BF16", np.ascontiguousarray(t.contiguous().view(dtype=_torch_int16(t)).numpy(),
                                                dtype="<i2")
        t = t.contiguous().numpy()
    a = np.asarray(t)
    dt = a.dtype.newbyteorder("=") if a.dtype.byteorder not in "=|" else a.dtype
    if dt not in _DTYPES:
        raise TypeError(f"save_safetensors: tensor '{name}' has dtype {a.dtype}, which "
                        f"safetensors has no name for here (use one of "
                        f"{', '.join(sorted(str(d) for d in _DTYPES))} or bfloat16)")
    # (ascontiguousarray makes a 0-d array 1-d: the shape is put back)
    return _DTYPES[dt], np.ascontiguousarray(a, dtype=dt.newbyteorder("<")).reshape(a.shape)


def _torch_int16(t):
    import torch  # only reached with a torch tensor in hand
    return torch.int16


def save_safetensors(state_dict, path, metadata=None):
    """Writes state_dict (name -> torch tensor or numpy array, e.g. a
    PyTorch module's state_dict()) to path as safetensors: every tensor, in
    the order given, with its own dtype (float32 stays float32; cnncc reads
    F32, F64, F16 and BF16 weights and ignores num_batches_tracked).
    metadata: an optional dict of strings for "__metadata__". The file is
    written under a temporary name and renamed, so it is whole or absent.
    Returns path.

        cnncc.save_safetensors(model.state_dict(), "resnet18.safetensors")
        cnncc.compile("examples/resnet18.yaml", "resnet18.so",
                      weights="resnet18.safetensors")
    """
    header, blobs, offset = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("save_safetensors: metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    for name, t in state_dict.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"save_safetensors: bad tensor name {name!r}")
        dtype, a = _as_array(name, t)
        data = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_safetensors(path):
    """Reads a safetensors file into a dict name -> numpy array (BF16 as
    float32), in file order; the "__metadata__" entry, if any, is left out."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header of {n} bytes runs past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        buf = data[b:end]
        if e["dtype"] == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            a = bits.view(np.float32)
        else:
            a = np.frombuffer(buf, dtype=_NUMPY[e["dtype"]].newbyteorder("<"))
        out[name] = a.reshape(tuple(e["shape"])).astype(a.dtype.newbyteorder("="))
    return out
