#!/usr/bin/python3
"""The Python module against small networks (ctest python_model):
cnncc.load and Model (info, zero copy, conversions and refusals, errors,
close), cnncc.compile, a LeNet-5 trained nowhere but with PyTorch's
numbers, and models used from two Python threads.

Numerical checks: LeNet-5 with seeded PyTorch weights (written by
cnncc.save_safetensors) against PyTorch, max|y - ref| <= 1e-5 * max|ref|;
everything else compares cnncc with itself bit for bit (the ABI promises
the same bits for any batch split and thread count)."""
import ctypes
import os
import threading
import unittest
import warnings

import numpy as np

from common import cnncc, compiled, example, work, SRC

TINY = os.path.join(SRC, "tests", "robustness", "tiny.yaml")


def lenet():
    return compiled(example("lenet5.yaml"), "lenet5.so")


def tiny():
    return compiled(TINY, "tiny.so")


def tiny_inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.standard_normal((n, 3, 12, 12), dtype=np.float32),
            "extra": rng.standard_normal((n, 5), dtype=np.float32)}


class Spy:
    """Stands in for a Model's cnn_run: records the pointers it is given."""

    def __init__(self, real):
        self.real, self.inputs, self.outputs = real, [], []

    def __call__(self, m, batch, ip, op):
        self.inputs.append([ctypes.cast(ip, ctypes.POINTER(ctypes.c_void_p))[i] or 0
                            for i in range(len(ip))])
        self.outputs.append([op[i] or 0 for i in range(len(op))])
        return self.real(m, batch, ip, op)


class Info(unittest.TestCase):
    def test_info_describes_the_network(self):
        with cnncc.load(lenet()) as m:
            i = m.info
            self.assertEqual(i["name"], "lenet5")
            self.assertEqual(i["inputs"], [{"name": "image", "shape": (1, 1, 32, 32)}])
            self.assertEqual(i["outputs"], [{"name": "output", "shape": (1, 10)}])
            self.assertEqual(i["num_params"], 61_706)  # PyTorch's count (tests/e2e/lenet5.py)
            self.assertEqual(i["macs"], 416_520)
            self.assertGreater(i["weight_bytes"], 4 * 61_706 - 1)
            self.assertGreater(i["arena_bytes"], 0)
            self.assertTrue(i["compiler"].startswith("cnncc "))
            self.assertIn("lenet5", repr(m))

    def test_two_inputs_and_two_outputs_by_name(self):
        with cnncc.load(tiny()) as m:
            self.assertEqual([d["name"] for d in m.info["inputs"]], ["image", "extra"])
            self.assertEqual([d["name"] for d in m.info["outputs"]], ["prob", "side"])
            x = tiny_inputs(3)
            by_name = m.run(x)
            by_list = m.run([x["image"], x["extra"]])
            prob, side = m(x["image"], x["extra"])
            for k in ("prob", "side"):
                np.testing.assert_array_equal(by_name[k], by_list[k])
            np.testing.assert_array_equal(prob, by_name["prob"])
            np.testing.assert_array_equal(side, by_name["side"])
            self.assertEqual(prob.shape, (3, 10))
            np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)  # a softmax


class ZeroCopy(unittest.TestCase):
    def test_a_c_contiguous_float32_input_is_passed_as_it_is(self):
        with cnncc.load(lenet()) as m:
            spy = m._cnn_run = Spy(m._cnn_run)
            x = np.random.default_rng(1).random((4, 1, 32, 32), dtype=np.float32)
            m(x)
            self.assertEqual(spy.inputs[-1], [x.ctypes.data])
            # anything else is converted: another buffer
            for other in (x.astype(np.float64), x[:, :, :, ::-1], x.astype(">f4"),
                          np.asfortranarray(x)):
                m(other)
                self.assertNotEqual(spy.inputs[-1], [x.ctypes.data])
                self.assertNotEqual(spy.inputs[-1], [other.ctypes.data])

    def test_outputs_go_into_the_arrays_given_as_out(self):
        with cnncc.load(lenet()) as m:
            spy = m._cnn_run = Spy(m._cnn_run)
            x = np.random.default_rng(2).random((3, 1, 32, 32), dtype=np.float32)
            y = np.full((3, 10), np.nan, dtype=np.float32)
            got = m.run({"image": x}, out={"output": y})
            self.assertIs(got["output"], y)
            self.assertEqual(spy.outputs[-1], [y.ctypes.data])
            np.testing.assert_array_equal(y, m(x))


class Conversions(unittest.TestCase):
    def test_converted_inputs_give_the_float32_bits(self):
        with cnncc.load(lenet()) as m:
            x = np.random.default_rng(3).random((2, 1, 32, 32), dtype=np.float32)
            want = m(x)
            np.testing.assert_array_equal(m(x.astype(np.float64)), want)
            np.testing.assert_array_equal(m(x.astype(">f4")), want)
            np.testing.assert_array_equal(m(np.asfortranarray(x)), want)
            np.testing.assert_array_equal(m(x.tolist()), want)
            flipped = x[:, :, ::-1]
            np.testing.assert_array_equal(m(flipped), m(np.ascontiguousarray(flipped)))
            ints = (x * 10).astype(np.int32)
            np.testing.assert_array_equal(m(ints), m(ints.astype(np.float32)))

    def test_batch_zero_gives_empty_outputs(self):
        with cnncc.load(lenet()) as m:
            y = m(np.zeros((0, 1, 32, 32), np.float32))
            self.assertEqual(y.shape, (0, 10))

    def test_batches_give_the_bits_of_single_samples(self):
        with cnncc.load(tiny(), threads=2) as m:
            x = tiny_inputs(5, seed=4)
            whole = m.run(x)
            for i in range(5):
                one = m.run({k: v[i:i + 1] for k, v in x.items()})
                for k in whole:
                    np.testing.assert_array_equal(one[k][0], whole[k][i])


class Refusals(unittest.TestCase):
    def assertRefused(self, f, *words):
        with self.assertRaises(ValueError) as cm:
            f()
        for w in words:
            self.assertIn(w, str(cm.exception))

    def test_bad_shapes_and_dtypes_are_refused_naming_the_input(self):
        with cnncc.load(tiny()) as m:
            x = tiny_inputs(2)
            ok = dict(x)
            self.assertRefused(lambda: m.run(dict(ok, image=x["image"][0])), "'image'", "rank 4",
                               "[N, 3, 12, 12]")
            self.assertRefused(lambda: m.run(dict(ok, image=x["image"][:, :, :11])), "'image'",
                               "[N, 3, 12, 12]", "(2, 3, 11, 12)")
            self.assertRefused(lambda: m.run(dict(ok, extra=x["extra"][:1])), "'extra'",
                               "batch 1", "another input has 2")
            self.assertRefused(lambda: m.run(dict(ok, extra=x["extra"].astype(np.complex64))),
                               "'extra'", "complex64")
            self.assertRefused(lambda: m.run(dict(ok, extra=np.array([["a"] * 5] * 2))),
                               "'extra'", "numbers")
            self.assertRefused(lambda: m.run(dict(ok, extra=np.empty((2, 5), dtype=object))),
                               "'extra'", "object")
            self.assertRefused(lambda: m.run(dict(ok, label=x["extra"])), "unknown input",
                               "label")
            self.assertRefused(lambda: m.run({"image": x["image"]}), "missing", "extra")
            self.assertRefused(lambda: m(x["image"]), "takes 2 input(s), got 1")
            self.assertRefused(lambda: m.run(x, out={"prob": np.zeros((2, 10), np.float64)}),
                               "out['prob']", "float32")
            self.assertRefused(lambda: m.run(x, out={"prob": np.zeros((3, 10), np.float32)}),
                               "out['prob']", "(2, 10)")
            self.assertRefused(lambda: m.run(x, out={"nope": np.zeros((2, 10), np.float32)}),
                               "unknown output")


class Errors(unittest.TestCase):
    def test_abi_errors_become_CnnError_with_cnn_last_error(self):
        with cnncc.load(lenet()) as m:
            with self.assertRaisesRegex(cnncc.CnnError, "cnn_set_num_threads: -1 threads"):
                m.set_threads(-1)
            with self.assertRaisesRegex(cnncc.CnnError, "cnn_set_profile: unknown mode 'loud'"):
                m.profile("loud")
            with self.assertRaisesRegex(cnncc.CnnError, "cannot write the trace file"):
                m.profile("trace:/nonexistent-dir/t.json")
        with self.assertRaisesRegex(cnncc.CnnError, "closed"):
            m(np.zeros((1, 1, 32, 32), np.float32))
        m.close()  # again: nothing

    def test_external_weights_are_loaded_from_their_file_or_refused(self):
        so = compiled(example("lenet5.yaml"), "lenet5_ext.so", external_weights=True)
        x = np.random.default_rng(5).random((2, 1, 32, 32), dtype=np.float32)
        with cnncc.load(so, weights=so + ".weights") as m, cnncc.load(lenet()) as ref:
            np.testing.assert_array_equal(m(x), ref(x))
        with self.assertRaisesRegex(cnncc.CnnError, "compiled with external weights"):
            cnncc.load(so)
        with self.assertRaisesRegex(cnncc.CnnError, "made for another network"):
            cnncc.load(so, weights=compiled(TINY, "tiny_ext.so", external_weights=True) +
                       ".weights")


class Compile(unittest.TestCase):
    def test_compile_passes_flags_and_raises_with_the_diagnostics(self):
        out = work("flags.so")
        self.assertEqual(cnncc.compile(example("lenet5.yaml"), out, opt=1, header=work("flags.h"),
                                       target_cpu="x86-64-v3", winograd=False, seed=3), out)
        with open(work("flags.h")) as f:
            self.assertIn("static inline int lenet5_run(", f.read())
        with cnncc.load(out) as m:
            self.assertIn("-O1 target=x86_64-linux-gnu cpu=x86-64-v3", m.info["compiler"])
        bad = work("bad.yaml")
        with open(bad, "w") as f:
            f.write("cnncc: 1\nname: bad\ninputs: {x: [1, 8, 8]}\nlayers:\n"
                    "  - {name: c, op: conv2d, out: 4, kernal: 3}\n")
        with self.assertRaises(cnncc.CompileError) as cm:
            cnncc.compile(bad, work("bad.so"))
        e = cm.exception
        self.assertEqual(e.returncode, 1)
        self.assertIn("unknown key 'kernal'", str(e))
        self.assertIn("did you mean 'kernel'?", e.stderr)
        self.assertFalse(os.path.exists(work("bad.so")))
        with self.assertRaises(ValueError):
            cnncc.compile(bad, work("bad.so"), opt=4)
        with self.assertRaises(FileNotFoundError):
            cnncc.compile(bad, work("bad.so"), cnncc="/nonexistent/cnncc")

    def test_emit_header_writes_the_header_alone(self):
        h = cnncc.compile(example("resnet50.yaml"), work("r50.h"), emit="header")
        with open(h) as f:
            self.assertIn("#define RESNET50_FC_SIZE 1000", f.read())

    def test_the_package_finds_this_builds_compiler(self):
        exe = cnncc.find_cnncc()
        self.assertTrue(os.access(exe, os.X_OK), exe)
        self.assertEqual(os.path.basename(exe), "cnncc")


class LeNet5AgainstPyTorch(unittest.TestCase):
    def test_weights_saved_by_save_safetensors_give_pytorchs_outputs(self):
        import torch
        from lenet5 import LeNet5
        torch.manual_seed(11)
        net = LeNet5().eval()
        w = cnncc.save_safetensors(net.state_dict(), work("lenet5_torch.safetensors"))
        so = cnncc.compile(example("lenet5.yaml"), work("lenet5_torch.so"), weights=w)
        x = np.random.default_rng(6).standard_normal((7, 1, 32, 32), dtype=np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        with cnncc.load(so) as m:
            y = m(x)
        self.assertLessEqual(np.abs(y - ref).max(), 1e-5 * np.abs(ref).max())


class Threads(unittest.TestCase):
    N, ROUNDS = 6, 40

    def reference(self, so, xs):
        with cnncc.load(so, threads=1) as m:
            return [m.run(x) for x in xs]

    def hammer(self, models, xs, want):
        """Threads, one per entry of models (a model may appear twice), each
        running every input ROUNDS times; returns the mismatches seen."""
        bad, start = [], threading.Barrier(len(models))

        def work_(m, k):
            start.wait()
            for r in range(self.ROUNDS):
                i = (r + k) % len(xs)
                got = m.run(xs[i])
                if any(not np.array_equal(got[n], want[i][n]) for n in got):
                    bad.append((k, r, i))
        ts = [threading.Thread(target=work_, args=(m, k)) for k, m in enumerate(models)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return bad

    def test_two_threads_each_with_its_own_model(self):
        xs = [tiny_inputs(self.N, seed=s) for s in range(4)]
        want = self.reference(tiny(), xs)
        with cnncc.load(tiny(), threads=1) as a, cnncc.load(tiny(), threads=1) as b:
            self.assertEqual(self.hammer([a, b], xs, want), [])

    def test_two_threads_sharing_one_model_take_turns(self):
        xs = [tiny_inputs(self.N, seed=s) for s in range(4)]
        want = self.reference(tiny(), xs)
        with cnncc.load(tiny(), threads=2) as m:
            self.assertEqual(self.hammer([m, m], xs, want), [])

    def test_two_networks_at_once(self):
        xl = [{"image": np.random.default_rng(s).random((3, 1, 32, 32), dtype=np.float32)}
              for s in range(3)]
        xt = [tiny_inputs(3, seed=s) for s in range(3)]
        wl, wt = self.reference(lenet(), xl), self.reference(tiny(), xt)
        with cnncc.load(lenet(), threads=1) as a, cnncc.load(tiny(), threads=1) as b:
            bad = []
            t1 = threading.Thread(target=lambda: bad.extend(self.hammer([a], xl, wl)))
            t2 = threading.Thread(target=lambda: bad.extend(self.hammer([b], xt, wt)))
            t1.start(), t2.start(), t1.join(), t2.join()
            self.assertEqual(bad, [])


if __name__ == "__main__":
    warnings.simplefilter("error", cnncc.CompileWarning)
    unittest.main(verbosity=2)
