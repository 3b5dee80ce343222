#!/usr/bin/env python3
"""conformance.py: ONNX's own backend tests, compiled by cnncc and compared.

    tests/onnx/conformance.py CNNCC WORKDIR [--data DIR] [--jobs N]
                              [--only SUBSTRING] [--report FILE]

Debian's libonnx-testdata ships the test cases of ONNX's backend test suite:
node/ (one op each), pytorch-converted/, pytorch-operator/, simple/, each a
model.onnx with test_data_set_*/input_*.pb and output_*.pb (TensorProto),
and real/ (large models that are only named, downloaded from the internet).

For every case:
  - scope: each op of the model must be in cnncc's ONNX table (the `OPS`
    below mirrors frontend/onnx/ops.c), every input computed at run time a
    float32 tensor of rank 2 ([N, F]) or 4 ([N, C, H, W]), every output
    float32; otherwise the case is skipped, with the reason;
  - freezing: an input that a compiled network needs as a constant (a
    Conv's W and B, BatchNormalization's statistics, Gemm's B and C, a
    Reshape's shape, Clip's bounds, ...: PARAM_INPUTS below) becomes an
    initializer with the value of the first test data set, as TVM's
    freeze_params does; the other inputs are fed at run time;
  - cnncc compiles it (-O2); a rejection counts as a skip only when its
    message is one of the documented limitations (LIMITS below), otherwise
    as a failure;
  - every test data set runs through the .so (the Python module, over the
    C ABI) and each output is compared with the stored one:
    |y - ref| <= atol + rtol * |ref|, rtol 1e-3, atol 1e-7 (the suite's own
    tolerance; ONNX's runner uses numpy's assert_allclose with them).
Prints pass / fail / skip counts and every case's result; exit 1 on any
failure. --report writes the markdown table of every case.

docs/onnx.md holds the counts and every skip with its reason between the
markers <!-- conformance:begin --> and <!-- conformance:end -->: --docs
FILE fails when that block differs from this run's, --update-docs FILE
rewrites it.
"""
import argparse
import collections
import glob
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import cnncc  # noqa: E402

DATA = "/usr/share/libonnx-testdata/data"
RTOL, ATOL = 1e-3, 1e-7

# The ops of frontend/onnx/ops.c (the default domain).
OPS = {
    "Conv", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "LRN", "Gemm", "MatMul", "Relu", "Clip", "Softmax", "Add", "Sub", "Mul",
    "Div", "Sum", "Mean", "Concat", "Flatten", "Reshape", "Identity", "Dropout", "Pad",
    "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Slice", "Cast", "ConstantOfShape",
    "Transpose", "Neg", "Sqrt", "Equal", "Where", "Range", "ReduceMean", "ReduceMax",
    "Sigmoid", "HardSigmoid", "HardSwish", "LayerNormalization", "Split",
}

# (op, input index) that a compiled network takes as a constant.
PARAM_INPUTS = {
    "Conv": {1, 2}, "BatchNormalization": {1, 2, 3, 4}, "Gemm": {1, 2}, "MatMul": {1},
    "Clip": {1, 2}, "Pad": {1, 2, 3}, "Reshape": {1}, "Dropout": {1, 2}, "Unsqueeze": {1},
    "Squeeze": {1}, "Slice": {1, 2, 3, 4}, "ConstantOfShape": {0}, "Range": {0, 1, 2},
    "LayerNormalization": {1, 2}, "Split": {1},
}

# cnncc's messages for what it does not compile, each a documented limit
# (docs/onnx.md): a rejection with one of these is a skip, anything else a
# failure.
LIMITS = [
    (r"a \d-D convolution|2-D pooling|'(strides|dilations|pads)' must have \d values for a 2-D",
     "not 2-D (1-D or 3-D convolution or pooling)"),
    (r"has rank \d; this op needs rank|rank \d; cnncc takes", "tensor rank other than 2 or 4"),
    (r"over the batch|the batch size|first dimension is not the batch|mix the batch",
     "an op across the batch dimension"),
    (r"only axis 1|over the channels or features only|another axis",
     "an axis other than channels/features"),
    (r"training_mode|spatial=0", "training mode"),
    (r"dilations are not supported for this op", "pooling with dilations"),
    (r"storage_order", "MaxPool storage_order=1"),
    (r"output 1 \(the indices\)|output \d \(a training statistic\)|the mask\) is used|"
     r"the inverse standard deviation\) is used",
     "a second output (indices, mask, training statistics, LayerNormalization's mean)"),
    (r"which cnncc cannot express|cannot reshape", "a reshape other than a flatten"),
    (r"is a constant where cnncc expects a tensor|must be a constant", "constant-only graph"),
    (r"cnncc multiplies run-time tensors of one shape", "Mul broadcasting other than per channel"),
    (r"quotient of two run-time tensors", "Div of two run-time tensors"),
    (r"adding a constant of shape|multiplying by a constant of shape",
     "broadcast other than scalar or per channel"),
    (r"cnncc compiles Clip with constant bounds", "Clip with bounds computed at run time"),
    (r"cnncc normalizes over the channels of each pixel only",
     "LayerNormalization over other axes than the channels"),
    (r"cnncc slices whole channels|Slice of the features of a vector|cnncc splits the channels",
     "a Slice or Split of other axes than the channels"),
    (r"a Transpose that moves the batch axis|cnncc transposes the axes of",
     "a Transpose of the batch or of a tensor other than [N, C, H, W]"),
    (r"is a transposed view", "a transposed tensor read by an op that needs [N, C, H, W]"),
    (r"cnncc unsqueezes a vector|cnncc squeezes \[N, C, 1, 1\]",
     "an Unsqueeze or Squeeze other than of a vector's trailing ones"),
    (r"Pad mode|padding the batch|negative pads|Pad whose output|padded with|cropping",
     "Pad that does not fold into a conv or pool"),
    (r"auto_pad", "auto_pad"),
    (r"transA=1", "Gemm transA"),
    (r"a constant minus a tensor|constant divided by a tensor", "constant - or / tensor"),
    (r"'kernel_shape' does not match", "kernel_shape inconsistent with the weight"),
    (r"has no input computed at run time", "no run-time input"),
    (r"varies along the batch", "a Gemm bias that varies along the batch"),
    (r"over other axes than H and W", "a reduction over axes other than H and W"),
    (r"cnncc evaluates \w+ at compile time only", "an op cnncc folds only, on a run-time tensor"),
    (r"comes from a Pad that no conv or pool absorbs", "a Pad that no conv or pool follows"),
]


def case_dirs(data):
    out = []
    for suite in ("node", "pytorch-converted", "pytorch-operator", "simple", "real"):
        for d in sorted(glob.glob(os.path.join(data, suite, "*"))):
            out.append(d)
    return out


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def data_sets(case):
    sets = []
    for ds in sorted(glob.glob(os.path.join(case, "test_data_set_*"))):
        ins = [load_pb(p) for p in sorted(glob.glob(os.path.join(ds, "input_*.pb")),
                                          key=lambda p: int(re.findall(r"\d+", os.path.basename(p))[0]))]
        outs = [load_pb(p) for p in sorted(glob.glob(os.path.join(ds, "output_*.pb")),
                                           key=lambda p: int(re.findall(r"\d+", os.path.basename(p))[0]))]
        sets.append((ins, outs))
    return sets


def ops_scope(model):
    """None if every op is in cnncc's table, else the reason for skipping."""
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            return f"op {n.op_type} of domain {n.domain}"
        if n.op_type not in OPS:
            return f"op {n.op_type}"
    return None


def scope(model, sets):
    """None if the data are in scope, else the reason for skipping."""
    g = model.graph
    init = {t.name for t in g.initializer}
    frozen = frozen_inputs(model)
    ins = [i for i in g.input if i.name not in init]
    if not sets:
        return "no test data"
    for k, i in enumerate(ins):
        a = sets[0][0][k]
        if i.name in frozen:
            continue
        if a.dtype != np.float32:
            return f"a run-time input of type {a.dtype}"
        if a.ndim not in (2, 4):
            return f"a run-time input of rank {a.ndim}"
    for o in sets[0][1]:
        if o.dtype != np.float32:
            return f"an output of type {o.dtype}"
        if o.ndim not in (2, 4):
            return f"an output of rank {o.ndim}"
    return None


def frozen_inputs(model):
    names = set()
    graph_inputs = {i.name for i in model.graph.input}
    for n in model.graph.node:
        for k in PARAM_INPUTS.get(n.op_type, ()):
            if k < len(n.input) and n.input[k] in graph_inputs:
                names.add(n.input[k])
    return names


def freeze(model, sets):
    """The model with its parameter inputs made initializers (values of the
    first data set), and the indices of the inputs still fed at run time."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    frozen = frozen_inputs(m)
    init = {t.name for t in m.graph.initializer}
    ins = [i for i in m.graph.input if i.name not in init]
    fed = []
    keep = []
    for k, i in enumerate(ins):
        if i.name in frozen:
            m.graph.initializer.append(numpy_helper.from_array(sets[0][0][k], i.name))
        else:
            fed.append(k)
            keep.append(i)
    others = [i for i in m.graph.input if i.name in init]
    del m.graph.input[:]
    m.graph.input.extend(keep + others)
    return m, fed


def limit_of(message):
    for pat, why in LIMITS:
        if re.search(pat, message):
            return why
    return None


def run_case(args):
    case, cnncc_exe, work = args
    name = os.path.relpath(case, os.path.dirname(os.path.dirname(case)))
    model_path = os.path.join(case, "model.onnx")
    if not os.path.exists(model_path):
        return name, "skip", "the model is not shipped (downloaded from the internet)"
    try:
        model = onnx.load(model_path)
    except Exception as e:  # a case that onnx itself cannot load
        return name, "skip", f"onnx cannot load it: {e}"
    why = ops_scope(model)
    if why:
        return name, "skip", why
    try:
        sets = data_sets(case)
    except Exception:
        return name, "skip", "test data that is not a tensor (a sequence or optional)"
    why = scope(model, sets)
    if why:
        return name, "skip", why
    frozen, fed = freeze(model, sets)
    tmp = tempfile.mkdtemp(dir=work)
    mpath, so = os.path.join(tmp, "model.onnx"), os.path.join(tmp, "model.so")
    onnx.save(frozen, mpath)
    r = subprocess.run([cnncc_exe, mpath, "-o", so, "-q"], capture_output=True, text=True)
    if r.returncode != 0:
        msg = r.stderr.strip().splitlines()[0] if r.stderr.strip() else f"exit {r.returncode}"
        msg = msg.replace(mpath, "model.onnx")
        lim = limit_of(r.stderr) if r.returncode == 1 else None
        if lim:
            return name, "skip", f"{lim} ({msg})"
        return name, "fail", f"cnncc exit {r.returncode}: {msg}"
    try:
        with cnncc.load(so, threads=1) as net:
            for si, (ins, outs) in enumerate(sets):
                ys = list(net.run([ins[k] for k in fed]).values())
                if len(ys) != len(outs):
                    return name, "fail", f"{len(ys)} outputs, expected {len(outs)}"
                for oi, (y, ref) in enumerate(zip(ys, outs)):
                    if y.shape != ref.shape:
                        return name, "fail", f"output {oi}: shape {y.shape}, expected {ref.shape}"
                    bad = np.abs(y - ref) > ATOL + RTOL * np.abs(ref)
                    nan_ok = np.isnan(y) == np.isnan(ref)
                    bad = (bad & ~(np.isnan(y) & np.isnan(ref))) | ~nan_ok
                    if bad.any():
                        k = int(np.argmax(np.abs(np.nan_to_num(y - ref))))
                        return name, "fail", (f"data set {si} output {oi}: {int(bad.sum())} of "
                                              f"{bad.size} values off, e.g. {y.flat[k]} vs "
                                              f"{ref.flat[k]}")
    except Exception as e:
        return name, "fail", f"run: {e}"
    finally:
        for f in (so, mpath):
            if os.path.exists(f):
                os.unlink(f)
        os.rmdir(tmp)
    return name, "pass", ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cnncc")
    ap.add_argument("work")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", default="")
    ap.add_argument("--report")
    ap.add_argument("--docs", help="check the block in this file (docs/onnx.md)")
    ap.add_argument("--update-docs", help="rewrite the block in this file")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    cases = [c for c in case_dirs(a.data) if a.only in c]
    if not cases:
        print(f"conformance: no test cases under {a.data} (apt-get install libonnx-testdata)")
        return 1
    with multiprocessing.Pool(a.jobs) as pool:
        results = pool.map(run_case, [(c, a.cnncc, a.work) for c in cases], chunksize=4)
    counts = collections.Counter(r[1] for r in results)
    for name, res, why in results:
        if res != "pass":
            print(f"{res:4}  {name}: {why}")
    reasons = collections.Counter(re.sub(r" \(.*", "", why) for _, res, why in results
                                  if res == "skip")
    print(f"\nconformance: {len(results)} cases: {counts['pass']} pass, {counts['fail']} fail, "
          f"{counts['skip']} skip")
    for why, k in reasons.most_common():
        print(f"  skip {k:4}  {why}")
    if a.report:
        with open(a.report, "w") as f:
            f.write(f"| result | cases |\n|---|---|\n| pass | {counts['pass']} |\n"
                    f"| fail | {counts['fail']} |\n| skip | {counts['skip']} |\n\n")
            f.write("| case | result | reason |\n|---|---|---|\n")
            for name, res, why in results:
                f.write(f"| `{name}` | {res} | {why.replace('|', '/')} |\n")
    status = 1 if counts["fail"] else 0
    block = docs_block(results, counts)
    for path, update in ((a.docs, False), (a.update_docs, True)):
        if not path:
            continue
        text = open(path).read()
        b, e = "<!-- conformance:begin -->\n", "<!-- conformance:end -->"
        if b not in text or e not in text:
            print(f"conformance: {path} has no conformance block")
            status = 1
            continue
        head, rest = text.split(b, 1)
        old, tail = rest.split(e, 1)
        if update:
            with open(path, "w") as f:
                f.write(head + b + block + e + tail)
            print(f"conformance: rewrote the block in {path}")
        elif old != block:
            print(f"conformance: the counts or skips in {path} are not this run's; "
                  f"run conformance.py with --update-docs {path} and review the change")
            status = 1
    return status


def docs_block(results, counts):
    """The counts and every skip, grouped by reason, as docs/onnx.md shows them."""
    by_reason = collections.defaultdict(list)
    for name, res, why in results:
        if res == "skip":
            by_reason[re.sub(r" \(.*", "", why)].append(name.split("/", 1)[1])
    out = [f"{len(results)} cases: **{counts['pass']} pass, {counts['fail']} fail, "
           f"{counts['skip']} skip**.", "",
           "| skipped because | cases | which |", "|---|---|---|"]
    for why, names in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.append(f"| {why} | {len(names)} | {', '.join(sorted(names))} |")
    passed = sorted(name for name, res, _ in results if res == "pass")
    out += ["", f"Passed ({len(passed)}): {', '.join(passed)}.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
