#!/usr/bin/python3
"""examples/batch_dask.py on a LocalCluster of 2 worker processes (ctest
python_dask, label python): every output equals the single-process
result, bit for bit, and each worker loaded its model once.

- the digits demo's LeNet-5 (trained; the digits fixture) over a folder of
  .npy files made from the 360 held-out digits, some one sample per file,
  some 20: the top-1 classes are also PyTorch's (torch_pred.i32);
- SqueezeNet 1.1 (deterministic weights) over 256 generated samples;
- the command line with --generate and --check.
$CNNCC_DIGITS_DATA is the digits fixture's folder."""
import os
import subprocess
import sys
import unittest

import numpy as np

from common import cnncc, compiled, example, work, SRC

sys.path.insert(0, os.path.join(SRC, "examples"))
import batch_dask  # noqa: E402

DATA = os.environ.get("CNNCC_DIGITS_DATA", "")


class Dask(unittest.TestCase):
    def cluster_equals_one_process(self, so, tasks, n):
        y, wall, per_pid, loads = batch_dask.classify(so, tasks, workers=2)
        ref = batch_dask.classify_here(so, tasks)
        self.assertEqual(y.shape[0], n)
        self.assertEqual(y.shape, ref.shape)
        self.assertTrue(np.array_equal(y, ref), "a cluster output differs from one process's")
        self.assertEqual(len(loads), 2, "two workers")
        self.assertEqual(sorted(loads.values()), [1, 1], "each worker loaded the model once")
        self.assertEqual(sum(per_pid.values()), len(tasks))
        self.assertNotIn(os.getpid(), per_pid, "the tasks ran in worker processes")
        print(f"\n  {os.path.basename(so)}: {n} samples, {len(tasks)} tasks, "
              f"{n / wall:.1f} samples/s on 2 workers; tasks per worker process "
              f"{sorted(per_pid.values())}", file=sys.stderr)
        return y

    @unittest.skipUnless(os.path.exists(os.path.join(DATA, "lenet5_digits.so")),
                         "no digits data (the digits_train and digits_compile fixtures)")
    def test_a_folder_of_digits(self):
        images = np.fromfile(os.path.join(DATA, "test_images.f32"), "<f4").reshape(-1, 1, 32, 32)
        torch_pred = np.fromfile(os.path.join(DATA, "torch_pred.i32"), "<i4")
        folder = work("digits-npy")
        os.makedirs(folder, exist_ok=True)
        for f in os.listdir(folder):
            os.unlink(os.path.join(folder, f))
        for i in range(100):  # one sample a file
            np.save(os.path.join(folder, f"a{i:03d}.npy"), images[i])
        for k in range(100, len(images), 20):  # then batches of 20
            np.save(os.path.join(folder, f"b{k:03d}.npy"), images[k:k + 20])
        tasks, n = batch_dask.plan_folder(folder, (1, 32, 32), chunk=32)
        self.assertEqual(n, 360)
        y = self.cluster_equals_one_process(os.path.join(DATA, "lenet5_digits.so"), tasks, n)
        self.assertEqual(y.argmax(axis=1).tolist(), torch_pred.tolist(),
                         "the classes are PyTorch's")

    def test_generated_samples_on_squeezenet(self):
        so = compiled(example("squeezenet1_1.yaml"), "squeezenet1_1.so")
        tasks, n = batch_dask.plan_generated(256, (3, 224, 224), chunk=16, seed=5)
        y = self.cluster_equals_one_process(so, tasks, n)
        self.assertGreater(np.abs(y[0] - y[1]).max(), 0, "the samples differ")

    def test_the_command_line(self):
        so = compiled(example("lenet5.yaml"), "lenet5.so")
        out = work("dask-out.npy")
        r = subprocess.run([sys.executable, os.path.join(SRC, "examples", "batch_dask.py"), so,
                            "--generate", "2000", "--chunk", "100", "--check", "--out", out],
                           capture_output=True, text=True)
        print(r.stdout, r.stderr, file=sys.stderr)
        self.assertEqual(r.returncode, 0)
        self.assertIn("every output is the same", r.stdout)
        self.assertIn("model loads per worker: 1, 1", r.stdout)
        self.assertRegex(r.stdout, r"2000 samples in [0-9.]+ s: [0-9.]+ samples/s")
        self.assertEqual(np.load(out).shape, (2000, 10))


if __name__ == "__main__":
    unittest.main(verbosity=2)
