#!/usr/bin/env python3
"""bad_models.py: ONNX models cnncc must refuse with one clear error.

    tests/onnx/bad_models.py CNNCC WORKDIR

Each case builds a model with onnx.helper (or damages a good one), runs
`cnncc MODEL -o out.so`, and checks: exit status 1 (never a crash, never
an internal error), the message (a substring), and that no output file was
left behind; for the modern CNNs' ops used beyond what cnncc expresses
(a Clip with a run-time bound, a Mul that broadcasts over H and W, a
LayerNormalization over C, H and W, a Transpose of the batch, ...), that
there is one error, naming the node and what is unsupported. A few
well-formed cases check that the fix a message suggests works
(--input-shape, external data inside the model's folder).
"""
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_model(x_dims=("N", 3, 8, 8), w=None, attrs=None, x_type=TensorProto.FLOAT,
               opset=13, extra_nodes=(), w_tensor=None):
    w = np.ones((4, 3, 3, 3), np.float32) if w is None else w
    x = helper.make_tensor_value_info("x", x_type, list(x_dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", **(attrs or {}))]
    nodes += list(extra_nodes) or [helper.make_node("Relu", ["c"], ["y"], name="relu")]
    init = [w_tensor if w_tensor is not None else numpy_helper.from_array(w, "w")]
    g = helper.make_graph(nodes, "g", [x], [y], init)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def after_conv(nodes, inits=(), opset=13):
    """x [N, 3, 8, 8] -> Conv 'conv' -> c [N, 4, 6, 6] -> nodes -> y."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv")
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    g = helper.make_graph([conv] + list(nodes), "g", [x], [y], [w] + list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def tensor(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def modern_cases(work, case):
    """The ops of the modern CNNs where they go beyond what cnncc expresses:
    one error naming the node and what is unsupported, no cascade."""
    n = helper.make_node

    def add(name, nodes, want, inits=(), opset=13, file=None):
        path = os.path.join(work, (file or name.split(":")[0].replace(" ", "_")) + ".onnx")
        case(name, save(after_conv(nodes, inits, opset), path), want, one_error=True)

    add("Clip with a run-time min", [n("Relu", ["c"], ["lo"], name="r"),
                                     n("Clip", ["c", "lo"], ["y"], name="clip")],
        "node 'clip' (Clip): its min 'lo' is computed at run time", file="clip_runtime")
    add("Mul by a map [N, 1, H, W] (spatial attention)",
        [n("Conv", ["c", "w1"], ["a"], name="att"), n("Sigmoid", ["a"], ["s"]),
         n("Mul", ["c", "s"], ["y"], name="m")],
        "node 'm' (Mul): the product of 'c' [1, 4, 6, 6] and 's' [1, 1, 6, 6]",
        [tensor("w1", np.ones((1, 4, 1, 1)))], file="mul_spatial")
    add("Mul of [N, 4, 6, 6] by [N, 4, 6, 1]",
        [n("MaxPool", ["c"], ["p"], name="p", kernel_shape=[1, 6]),
         n("Mul", ["c", "p"], ["y"], name="m")],
        "node 'm' (Mul): the product of 'c' [1, 4, 6, 6] and 'p' [1, 4, 6, 1]", file="mul_bcast")
    add("Mul by a constant along W", [n("Mul", ["c", "k"], ["y"], name="m")],
        "node 'm' (Mul): multiplying by a constant of shape [6]",
        [tensor("k", np.ones(6))], file="mul_const")
    add("Div of two run-time tensors", [n("Relu", ["c"], ["r"]), n("Div", ["c", "r"], ["y"],
                                                                    name="d")],
        "node 'd' (Div): a quotient of two run-time tensors", file="div_tensors")
    add("LayerNormalization over C, H, W",
        [n("LayerNormalization", ["c", "s"], ["y"], name="ln", axis=1)],
        "node 'ln' (LayerNormalization): LayerNormalization of 'c' [1, 4, 6, 6] over axes 1 to 3",
        [tensor("s", np.ones((4, 6, 6)))], opset=17, file="ln_chw")
    add("a Transpose that moves the batch",
        [n("Transpose", ["c"], ["y"], name="t", perm=[1, 0, 2, 3])],
        "node 't' (Transpose): a Transpose that moves the batch axis", file="transpose_batch")
    add("a channels-last view read by a Conv",
        [n("Transpose", ["c"], ["t"], name="t", perm=[0, 2, 3, 1]),
         n("Conv", ["t", "w"], ["z"], name="conv2"), n("Relu", ["z"], ["y"], name="r2")],
        "node 'conv2' (Conv): input 't' is a transposed view", file="transposed_conv")
    add("a channels-last graph output", [n("Transpose", ["c"], ["y"], name="t", perm=[0, 2, 3, 1])],
        "graph output 'y' is a transposed view", file="transposed_out")
    add("a MatMul over the width",
        [n("MatMul", ["c", "k"], ["y"], name="mm")],
        "node 'mm' (MatMul): a MatMul over the last axis of 'c' [1, 4, 6, 6], which is not its "
        "channels", [tensor("k", np.ones((6, 6)))], file="matmul_w")
    add("a Slice along H",
        [n("Slice", ["c", "s", "e", "a"], ["y"], name="sl")],
        "node 'sl' (Slice): a Slice along axis 2 (H or W)",
        [tensor("s", [1], np.int64), tensor("e", [4], np.int64), tensor("a", [2], np.int64)],
        file="slice_h")
    add("a Split along W", [n("Split", ["c"], ["y", "z"], name="sp", axis=3)],
        "node 'sp' (Split): a Split along axis 3", file="split_w")
    add("a lone Erf", [n("Erf", ["c"], ["y"], name="erf")],
        "node 'erf' (Erf): op Erf (opset 13) is not supported by itself; cnncc reads it only as "
        "part of GELU", file="erf")
    shuffle = [n("Reshape", ["c", "s1"], ["r"], name="r1"),
               n("Transpose", ["r"], ["t"], name="t", perm=[0, 2, 1, 3, 4]),
               n("Reshape", ["t", "s2"], ["y"], name="r2")]
    add("a channel shuffle of the wrong shape", shuffle,
        "(ChannelShuffle): a Reshape to [0, 2, 2, 3, 12], Transpose and Reshape to [0, -1, 6, 6]",
        [tensor("s1", [0, 2, 2, 3, 12], np.int64), tensor("s2", [0, -1, 6, 6], np.int64)],
        file="shuffle_bad")
    add("LayerNormalization's mean used",
        [n("Transpose", ["c"], ["t"], name="t", perm=[0, 2, 3, 1]),
         n("LayerNormalization", ["t", "s"], ["u", "mean"], name="ln"),
         n("Transpose", ["u"], ["v"], perm=[0, 3, 1, 2]), n("Add", ["v", "mean"], ["y"])],
        "node 'ln' (LayerNormalization): its output 1 (the mean or the inverse standard "
        "deviation) is used", [tensor("s", np.ones(4))], opset=17, file="ln_mean")


def save(model, path):
    onnx.save(model, path)
    return path


def run(cnncc, args, work):
    out = os.path.join(work, "out.so")
    if os.path.exists(out):
        os.unlink(out)
    r = subprocess.run([cnncc] + args + ["-o", out], capture_output=True, text=True)
    return r.returncode, r.stderr, os.path.exists(out)


def main():
    cnncc, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    good = save(conv_model(attrs={"pads": [1, 1, 1, 1]}), os.path.join(work, "good.onnx"))
    data = open(good, "rb").read()
    cases = []

    def case(name, path, want, extra=(), one_error=False):
        cases.append((name, path, want, list(extra), one_error))

    p = os.path.join(work, "truncated.onnx")
    open(p, "wb").write(data[: len(data) * 2 // 3])
    case("a truncated file", p, "not a valid ONNX model")
    p = os.path.join(work, "corrupt.onnx")
    bad = bytearray(data)
    for k in range(8, len(bad), 7):
        bad[k] ^= 0x5A
    open(p, "wb").write(bytes(bad))
    case("corrupt bytes", p, "not a valid ONNX model")
    p = os.path.join(work, "empty.onnx")
    open(p, "wb").write(b"")
    case("an empty file", p, "empty")  # decided by content: an empty file is no model
    case("an int64 input", save(conv_model(x_type=TensorProto.INT64), os.path.join(work, "i64.onnx")),
         "element type 7; cnncc's inputs are float32")
    f16 = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float16), "w")
    case("float16 weights", save(conv_model(w_tensor=f16), os.path.join(work, "f16.onnx")),
         "initializer 'w' is a float16 tensor")
    case("a kernel_shape that is not the weight's",
         save(conv_model(attrs={"kernel_shape": [5, 5]}), os.path.join(work, "ks.onnx")),
         "'kernel_shape' does not match the weight")
    case("groups that do not divide the channels",
         save(conv_model(w=np.ones((4, 1, 3, 3), np.float32), attrs={"group": 2}),
              os.path.join(work, "groups.onnx")),
         "cannot split the 3 input channels")
    case("a negative stride", save(conv_model(attrs={"strides": [-1, 1]}),
                                   os.path.join(work, "stride.onnx")),
         "strides and dilations must be positive")
    unsup = conv_model(extra_nodes=[helper.make_node("Tanh", ["c"], ["t"], name="t1"),
                                    helper.make_node("Erf", ["t"], ["e"], name="e1"),
                                    helper.make_node("Tanh", ["e"], ["y"], name="t2")])
    case("three unsupported nodes, all named",
         save(unsup, os.path.join(work, "unsup.onnx")),
         "3 nodes of 4 use ops cnncc does not read (Tanh, Erf)")
    case("an opset beyond 17", save(conv_model(opset=18), os.path.join(work, "opset18.onnx")),
         "opset 18 of the default domain is not supported")
    case("a symbolic height", save(conv_model(x_dims=("N", 3, "H", 8)),
                                  os.path.join(work, "symbolic.onnx")),
         "dimension 2 of graph input 'x' is 'H'")
    case("a bad --input-shape", good, "a per-sample shape is CxHxW", ["--input-shape", "x=3x8"])
    case("--input-shape of no input", good, "'nope', which is not an input of the model",
         ["--input-shape", "nope=3x8x8"])
    # External data that leaves the model's folder.
    sub = os.path.join(work, "ext")
    os.makedirs(sub, exist_ok=True)
    m = conv_model()
    onnx.external_data_helper.convert_model_to_external_data(m, location="../outside.bin",
                                                             size_threshold=0)
    onnx.save(m, os.path.join(sub, "ext.onnx"), save_as_external_data=False)
    open(os.path.join(work, "outside.bin"), "wb").write(np.ones(108, np.float32).tobytes())
    case("external data outside the model's folder", os.path.join(sub, "ext.onnx"),
         "leaves the model's folder")
    m = conv_model()
    onnx.external_data_helper.convert_model_to_external_data(m, location="missing.bin",
                                                             size_threshold=0)
    onnx.save(m, os.path.join(sub, "missing.onnx"), save_as_external_data=False)
    if os.path.exists(os.path.join(sub, "missing.bin")):  # onnx.save wrote it: make it missing
        os.unlink(os.path.join(sub, "missing.bin"))
    case("missing external data", os.path.join(sub, "missing.onnx"),
         "cannot open its external data 'missing.bin'")

    modern_cases(work, case)

    failures = 0
    for name, path, want, extra, one_error in cases:
        rc, err, left = run(cnncc, [path] + extra, work)
        ok = rc == 1 and want in err and not left and "internal error" not in err
        # one error, not one per reader of a value it could not compute
        ok = ok and (not one_error or err.count(": error: ") == 1)
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {rc}"
              + ("" if ok else f", expected 1 and '{want}'{', an output was left' if left else ''}"))
        print("     " + (err.strip().splitlines() or ["(no message)"])[0])

    # The fixes the messages suggest work.
    for name, args in (
            ("--input-shape fixes the symbolic height",
             [os.path.join(work, "symbolic.onnx"), "--input-shape", "x=3x8x8"]),
            ("external data inside the folder loads", None)):
        if args is None:
            m = conv_model()
            onnx.save(m, os.path.join(sub, "inside.onnx"), save_as_external_data=True,
                      all_tensors_to_one_file=True, location="inside.bin", size_threshold=0)
            args = [os.path.join(sub, "inside.onnx")]
        rc, err, left = run(cnncc, args, work)
        ok = rc == 0 and left
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {rc} {err.strip()[:200]}")
    print(f"bad_models: {len(cases) + 2} cases, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
