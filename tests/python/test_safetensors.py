#!/usr/bin/python3
"""cnncc.save_safetensors and load_safetensors (ctest python_safetensors):
the bytes against the format's definition (an 8-byte little-endian header
length, a JSON header padded to 8 bytes, the data in order), every dtype,
torch tensors and numpy arrays, metadata, refusals, and the same bytes as
the e2e suite's own writer (tests/e2e/make_ref.py) for a state dict."""
import json
import os
import struct
import unittest

import numpy as np

from common import cnncc, work


def read(path):
    with open(path, "rb") as f:
        return f.read()


def parse(path):
    raw = read(path)
    (n,) = struct.unpack("<Q", raw[:8])
    return raw, n, json.loads(raw[8:8 + n]), raw[8 + n:]


class Format(unittest.TestCase):
    def test_the_bytes_are_the_formats(self):
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        b = np.array([1, -2], dtype=np.int64)
        path = cnncc.save_safetensors({"w": a, "b.x": b}, work("fmt.safetensors"),
                                      metadata={"format": "pt"})
        raw, n, header, data = parse(path)
        self.assertEqual(n % 8, 0, "the header is padded to 8 bytes")
        self.assertEqual(header["__metadata__"], {"format": "pt"})
        self.assertEqual(header["w"], {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]})
        self.assertEqual(header["b.x"], {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]})
        self.assertEqual(list(header)[1:], ["w", "b.x"], "tensors in the order given")
        self.assertEqual(len(data), 40)
        self.assertEqual(data[:24], struct.pack("<6f", *range(6)))
        self.assertEqual(data[24:], struct.pack("<2q", 1, -2))

    def test_every_dtype_round_trips(self):
        rng = np.random.default_rng(0)
        tensors = {
            "f64": rng.standard_normal((3, 2)), "f32": rng.standard_normal(5).astype(np.float32),
            "f16": rng.standard_normal(4).astype(np.float16),
            "i32": np.array([[1, 2], [3, -4]], np.int32), "i16": np.array([7], np.int16),
            "i8": np.array([-8, 9], np.int8), "u8": np.array([250], np.uint8),
            "bool": np.array([True, False]), "scalar": np.float32(2.5),
            "empty": np.zeros((0, 3), np.float32),
        }
        path = cnncc.save_safetensors(tensors, work("all.safetensors"))
        back = cnncc.load_safetensors(path)
        self.assertEqual(list(back), list(tensors))
        for k, v in tensors.items():
            v = np.asarray(v)
            self.assertEqual(back[k].dtype, v.dtype, k)
            self.assertEqual(back[k].shape, v.shape, k)
            np.testing.assert_array_equal(back[k], v, k)
        _, _, header, _ = parse(path)
        self.assertEqual(header["scalar"]["shape"], [])
        self.assertEqual(header["f16"]["dtype"], "F16")
        self.assertEqual(header["bool"]["dtype"], "BOOL")

    def test_views_and_big_endian_arrays_are_written_as_their_values(self):
        a = np.arange(12, dtype=np.float32).reshape(3, 4)
        tensors = {"t": a.T, "step": a[:, ::2], "be": a.astype(">f4")}
        back = cnncc.load_safetensors(cnncc.save_safetensors(tensors, work("views.safetensors")))
        for k, v in tensors.items():
            np.testing.assert_array_equal(back[k], v)
        self.assertEqual(back["be"].dtype, np.float32)

    def test_torch_tensors_and_bfloat16(self):
        import torch
        t = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),  # not contiguous
             "n": torch.tensor(5), "h": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
             "g": torch.ones(2, requires_grad=True)}
        path = cnncc.save_safetensors(t, work("torch.safetensors"))
        _, _, header, _ = parse(path)
        self.assertEqual(header["h"]["dtype"], "BF16")
        self.assertEqual(header["n"]["dtype"], "I64")
        back = cnncc.load_safetensors(path)
        np.testing.assert_array_equal(back["w"], t["w"].numpy())
        np.testing.assert_array_equal(back["h"], [1.5, -2.0])
        np.testing.assert_array_equal(back["g"], [1.0, 1.0])

    def test_the_e2e_writer_writes_the_same_bytes(self):
        import make_ref
        import torch
        make_ref.load_torch()
        torch.manual_seed(0)
        state = {k: v for k, v in torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                                      torch.nn.BatchNorm2d(4)).state_dict().items()
                 if not k.endswith("num_batches_tracked")}
        mine = cnncc.save_safetensors(state, work("mine.safetensors"))
        make_ref.write_safetensors(work("theirs.safetensors"), state)
        self.assertEqual(read(mine), read(work("theirs.safetensors")))

    def test_refusals(self):
        with self.assertRaisesRegex(TypeError, "'c'.*complex"):
            cnncc.save_safetensors({"c": np.zeros(2, np.complex64)}, work("x.safetensors"))
        with self.assertRaisesRegex(ValueError, "bad tensor name"):
            cnncc.save_safetensors({"__metadata__": np.zeros(2)}, work("x.safetensors"))
        with self.assertRaisesRegex(TypeError, "metadata"):
            cnncc.save_safetensors({"a": np.zeros(2)}, work("x.safetensors"), metadata={"a": 1})
        self.assertFalse(os.path.exists(work("x.safetensors")))
        self.assertEqual([f for f in os.listdir(os.path.dirname(work("x")))
                          if f.startswith("x.safetensors")], [], "no temporary file left")


if __name__ == "__main__":
    unittest.main(verbosity=2)
