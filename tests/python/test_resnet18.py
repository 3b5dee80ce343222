#!/usr/bin/python3
"""ResNet-18 from PyTorch to numpy and back (ctest python_resnet18, ~1 min):

- the issue's round trip: torchvision's ResNet-18 with the e2e suite's
  seeded, non-trivial weights (tests/e2e/make_ref.py) -> save_safetensors
  -> cnncc.compile(examples/resnet18.yaml) -> numpy in, numpy out, against
  PyTorch on the same input;
- the same module through cnncc.from_torch (torch.onnx.export + the ONNX
  frontend);
- a module with ops cnncc does not read: UnsupportedOpsError naming them;
- a trace (Model.profile("trace:FILE")) read with json: its structure, and
  that the slices cover the run.

Tolerance (as tests/onnx/zoo_onnx.py): max|y - ref| <= 1e-4 * max|ref|.
"""
import bisect
import json
import os
import unittest

import numpy as np

from common import cnncc, example, work

TOL = 1e-4


class ResNet18(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import make_ref
        import torch
        make_ref.load_torch()
        torch.set_num_threads(2)
        cls.torch = torch
        cls.model, net = make_ref.build("resnet18")
        torch.manual_seed(1234)
        x = make_ref.make_input(2, net.shape)
        cls.x = x.numpy()
        with torch.no_grad():
            cls.ref = cls.model(x).numpy()
        cls.so = work("resnet18.so")
        cls.weights = work("resnet18.safetensors")

    def close_to_pytorch(self, y):
        self.assertEqual(y.shape, self.ref.shape)
        err = np.abs(y - self.ref).max() / np.abs(self.ref).max()
        self.assertLessEqual(err, TOL, f"max|y - ref| / max|ref| = {err:.2e}")
        # the samples differ, so a kernel that ignored its input would show
        self.assertGreater(np.abs(self.ref[0] - self.ref[1]).max(), 100 * TOL * np.abs(self.ref).max())

    def test_1_numpy_round_trip_from_a_state_dict(self):
        cnncc.save_safetensors(self.model.state_dict(), self.weights)
        cnncc.compile(example("resnet18.yaml"), self.so, weights=self.weights)
        with cnncc.load(self.so, threads=2) as m:
            self.assertEqual(m.info["num_params"], 11_689_512)
            y = m(self.x)
            self.close_to_pytorch(y)
            np.testing.assert_array_equal(m(self.x[1:]), y[1:])  # any sample, same bits

    def test_2_from_torch(self):
        so = cnncc.from_torch(self.model, self.torch.zeros(1, 3, 224, 224), work("r18_onnx.so"),
                              input_names="image", output_names="logits",
                              onnx_path=work("r18.onnx"))
        self.assertTrue(os.path.exists(work("r18.onnx")))
        with cnncc.load(so) as m:
            self.assertEqual(m.info["name"], "r18")  # the ONNX file's name
            self.assertEqual([d["name"] for d in m.info["outputs"]], ["logits"])
            self.close_to_pytorch(m.run({"image": self.x})["logits"])
        self.assertFalse(self.model.training)

    def test_3_unsupported_ops_are_named(self):
        torch = self.torch

        class Odd(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3)
                self.fc = torch.nn.Linear(4 * 6 * 6, 5)

            def forward(self, x):
                y = torch.nn.functional.gelu(torch.tanh(self.conv(x)))
                return self.fc(torch.flatten(y, 1))

        odd = Odd().train()
        with self.assertRaises(cnncc.UnsupportedOpsError) as cm:
            cnncc.from_torch(odd, torch.zeros(1, 3, 8, 8), work("odd.so"))
        e = cm.exception
        self.assertEqual(sorted(e.ops), ["Erf", "Tanh"])  # GELU exports as Erf
        self.assertIn("uses ops cnncc does not read: Tanh, Erf", str(e))
        self.assertIn("docs/onnx.md", str(e))
        self.assertIsInstance(e, cnncc.CompileError)
        self.assertTrue(odd.training, "from_torch left the module in eval mode")
        self.assertFalse(os.path.exists(work("odd.so")))

    def test_4_a_trace_covers_the_run(self):
        if not os.path.exists(self.so):
            self.test_1_numpy_round_trip_from_a_state_dict()
        path = work("resnet18.trace.json")
        with cnncc.load(self.so, threads=2) as m:
            m.profile(f"trace:{path}")
            m(self.x)      # batch 2
            m(self.x[:1])  # batch 1
            m.profile("off")  # writes the file
        with open(path) as f:
            t = json.load(f)
        check_trace(self, t, runs=[2, 1])


def check_trace(tc, t, runs):
    """The trace-event JSON of a model traced over len(runs) cnn_run calls of
    those batch sizes, on 2 threads."""
    other, events = t["otherData"], t["traceEvents"]
    L = other["layers"]
    tc.assertEqual(other["network"], "resnet18")
    tc.assertEqual(other["dropped_slices"], 0)
    meta = [e for e in events if e["ph"] == "M"]
    xs = [e for e in events if e["ph"] == "X"]
    tc.assertEqual(len(meta) + len(xs), len(events), "only M and X events")
    tc.assertEqual(other["slices"], len(xs))
    names = {e["tid"]: e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    tc.assertEqual(names.get(0), "cnn_run caller")
    for e in xs:
        for k in ("name", "cat", "ts", "dur", "pid", "tid", "args"):
            tc.assertIn(k, e)
        tc.assertGreaterEqual(e["dur"], 0)
        tc.assertIn(e["tid"], names, "every thread is named")
    run_slices = [e for e in xs if e["name"] == "cnn_run"]
    tc.assertEqual([e["args"]["batch"] for e in run_slices], runs)
    caller = [e for e in xs if e["tid"] == 0 and e["name"] != "cnn_run"]
    workers = [e for e in xs if e["tid"] > 0]
    tc.assertEqual(len(caller), L * sum(runs), "one slice per layer and sample")
    tc.assertGreater(len(workers), 0, "2 threads: the worker ran chunks")
    for e in caller + workers:
        a = e["args"]
        for k in ("layer", "op", "kernel", "gflop_per_s", "flops", "bytes", "items"):
            tc.assertIn(k, a)
        tc.assertEqual(e["cat"], a["op"])
        tc.assertGreater(a["bytes"], 0)
        tc.assertTrue(a["kernel"])
    convs = [e for e in caller if e["args"]["op"].startswith("conv2d")]
    tc.assertGreater(len(convs), 15 * sum(runs))
    tc.assertTrue(all(e["args"]["gflop_per_s"] > 0 for e in convs))
    # in each run: the layers in order, sample after sample, inside the
    # run's slice, and together covering it (the rest is pointer set-up)
    eps = 0.01  # us: the file's timestamps have three decimals
    for r, batch in zip(run_slices, runs):
        t0, t1 = r["ts"], r["ts"] + r["dur"]
        mine = sorted((e for e in caller if t0 - eps <= e["ts"] <= t1 + eps), key=lambda e: e["ts"])
        tc.assertEqual([e["args"]["layer"] for e in mine], list(range(L)) * batch)
        for a, b in zip(mine, mine[1:]):
            tc.assertLessEqual(a["ts"] + a["dur"], b["ts"] + eps, "caller slices overlap")
        tc.assertLessEqual(mine[-1]["ts"] + mine[-1]["dur"], t1 + eps)
        covered = sum(e["dur"] for e in mine)
        tc.assertGreaterEqual(covered, 0.95 * r["dur"],
                              f"layers cover {covered / r['dur']:.1%} of a {r['dur']:.0f} us run")
    # a worker's slice lies inside the caller's slice of the same launch
    by_time = sorted(caller, key=lambda e: e["ts"])
    starts = [e["ts"] for e in by_time]
    for w in workers:
        i = bisect.bisect_right(starts, w["ts"] + eps) - 1
        tc.assertGreaterEqual(i, 0)
        c = by_time[i]
        tc.assertEqual(c["args"]["layer"], w["args"]["layer"])
        tc.assertLessEqual(w["ts"] + w["dur"], c["ts"] + c["dur"] + eps)


if __name__ == "__main__":
    unittest.main(verbosity=2)
