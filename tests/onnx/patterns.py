#!/usr/bin/env python3
"""patterns.py: the ONNX ops and exporter patterns of the modern CNNs, each
in a small hand-built model, against an independent reference.

    tests/onnx/patterns.py CNNCC WORKDIR [--only SUBSTRING]

Every case is a model built with onnx.helper as an exporter writes it (the
ops alone: Clip, Sigmoid, HardSigmoid, HardSwish, LayerNormalization,
Split, Slice, Transpose, Unsqueeze, ...; and the multi-node patterns cnncc
recognizes: x * Sigmoid(x), x * HardSigmoid(x), GELU's erf and tanh forms
in several groupings, LayerNorm before opset 17, ConvNeXt's channels-last
block, torchvision's channel shuffle, a squeeze-excitation gate). For each:

  - the reference is the model evaluated node by node in numpy (float64),
    by the small interpreter below that follows the ONNX operator
    definitions; it knows nothing of cnncc's patterns (onnx 1.12 has no
    onnx.reference evaluator);
  - the inputs reach every regime of every nonlinearity (the tails of
    sigmoid and GELU beyond +-10, the three pieces of hardswish and
    hardsigmoid, both bounds of a clamp): the share of elements in each
    regime is printed, and a regime never reached fails the case;
  - cnncc compiles the model; the .so runs a batch of 2 through the ABI
    and must match: max|y - ref| <= 1e-5 * max|ref| (+1e-6);
  - the IR as lowered (--emit=ir -O0) must hold the ops the case names
    (the pattern became one op, no leftover Mul or Sigmoid) and, where the
    case says, the IR after the passes exactly the ops it names (the
    activation fused into the conv before it, a layer scale folded into a
    conv: gone; layout reorders aside).

Exit 1 on any failure.
"""
import argparse
import math
import os
import re
import subprocess
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import cnncc  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6
RNG = np.random.default_rng(7)
SQRT2 = np.float32(math.sqrt(2.0))

# --------------------------------------------------------------- reference


def _conv(x, w, b, strides=(1, 1), pads=(0, 0, 0, 0), group=1, **_):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (xp.shape[2] - kh) // strides[0] + 1
    ow = (xp.shape[3] - kw) // strides[1] + 1
    y = np.zeros((n, m, oh, ow))
    mg = m // group
    for g in range(group):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i:i + strides[0] * oh:strides[0], j:j + strides[1] * ow:strides[1]]
                y[:, g * mg:(g + 1) * mg] += np.einsum("nchw,mc->nmhw", patch,
                                                        w[g * mg:(g + 1) * mg, :, i, j])
    return y + (b.reshape(1, -1, 1, 1) if b is not None else 0)


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def evaluate(model, feeds):
    """The ONNX graph run node by node in float64 numpy."""
    opset = {o.domain: o.version for o in model.opset_import}.get("", 1)
    v = {t.name: numpy_helper.to_array(t).astype(np.float64)
         if numpy_helper.to_array(t).dtype.kind == "f" else numpy_helper.to_array(t)
         for t in model.graph.initializer}
    v.update({k: x.astype(np.float64) for k, x in feeds.items()})
    for n in model.graph.node:
        a, ins = _attrs(n), [v[i] if i else None for i in n.input]
        op = n.op_type
        x = ins[0] if ins else None
        if op == "Constant":
            out = numpy_helper.to_array(a["value"])
        elif op == "Conv":
            out = _conv(x, ins[1], ins[2] if len(ins) > 2 else None, **a)
        elif op == "Relu":
            out = np.maximum(x, 0)
        elif op == "Clip":
            lo = a.get("min", -np.inf) if opset < 11 else (ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf)
            hi = a.get("max", np.inf) if opset < 11 else (ins[2] if len(ins) > 2 and ins[2] is not None else np.inf)
            out = np.minimum(np.maximum(x, lo), hi)
        elif op == "Sigmoid":
            out = 1 / (1 + np.exp(-x))
        elif op == "HardSigmoid":
            out = np.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1)
        elif op == "HardSwish":
            out = x * np.clip(x / 6 + 0.5, 0, 1)
        elif op == "Erf":
            out = np.vectorize(math.erf)(x)
        elif op == "Tanh":
            out = np.tanh(x)
        elif op in ("Add", "Sub", "Mul", "Div", "Pow"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
                 "Pow": np.power}[op]
            out = f(x, ins[1])
        elif op == "Sqrt":
            out = np.sqrt(x)
        elif op == "ReduceMean":
            out = x.mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))
        elif op == "Transpose":
            out = x.transpose(a["perm"])
        elif op == "MatMul":
            out = x @ ins[1]
        elif op == "Gemm":
            out = x @ (ins[1].T if a.get("transB") else ins[1]) + ins[2]
        elif op == "Reshape":
            shape = [x.shape[i] if s == 0 else s for i, s in enumerate(ins[1].tolist())]
            out = x.reshape(shape)
        elif op == "Flatten":
            out = x.reshape(x.shape[0], -1)
        elif op == "LayerNormalization":
            ax = a.get("axis", -1) % x.ndim
            axes = tuple(range(ax, x.ndim))
            mu = x.mean(axis=axes, keepdims=True)
            var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
            out = (x - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * ins[1]
            out = out + ins[2] if len(ins) > 2 else out
        elif op == "Concat":
            out = np.concatenate(ins, axis=a["axis"])
        elif op == "Slice":
            sl = [slice(None)] * x.ndim
            axes = ins[3].tolist() if len(ins) > 3 else list(range(len(ins[1])))
            for s, e, ax in zip(ins[1].tolist(), ins[2].tolist(), axes):
                sl[ax] = slice(s, e)
            out = x[tuple(sl)]
        elif op == "Split":
            sizes = (a["split"] if opset < 13 and "split" in a else
                     ins[1].tolist() if len(ins) > 1 else [x.shape[a["axis"]] // len(n.output)] * len(n.output))
            outs = np.split(x, np.cumsum(sizes)[:-1], axis=a["axis"])
            for name, o in zip(n.output, outs):
                v[name] = o
            continue
        elif op == "Unsqueeze":
            axes = a["axes"] if opset < 13 else ins[1].tolist()
            out = x
            for ax in sorted(axes):
                out = np.expand_dims(out, ax)
        elif op == "Squeeze":
            out = np.squeeze(x, axis=tuple(a["axes"] if opset < 13 else ins[1].tolist()))
        elif op == "GlobalAveragePool":
            out = x.mean(axis=(2, 3), keepdims=True)
        elif op == "GlobalMaxPool":
            out = x.max(axis=(2, 3), keepdims=True)
        elif op == "Identity":
            out = x
        else:
            raise NotImplementedError(op)
        v[n.output[0]] = out
    return [v[o.name] for o in model.graph.output]


# ------------------------------------------------------------------ models

def const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
        np.asarray(value, np.float32 if np.asarray(value).dtype.kind == "f" else np.int64), name))


def init(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def model(nodes, inits=(), shape=(4, 6, 6), opset=13, out_shape=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "g", [x], [y], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def conv_w(cout, cin, k=1, scale=1.0):
    return init("w", RNG.normal(0, scale * (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k)))


def conv(out="c", inp="x"):
    return helper.make_node("Conv", [inp, "w", "b"], [out], name="conv", pads=[1, 1, 1, 1])


def conv_inits(c=4, scale=4.0):
    return [conv_w(c, c, 3, scale), init("b", RNG.uniform(-0.5, 0.5, c))]


# regimes: (names, function of the activation's input -> regime index)
TAILS = (["x < -10", "-10 <= x <= 10", "x > 10"], lambda x: (x >= -10) * 1 + (x > 10))
KINKS = (["x <= -3", "-3 < x < 3", "x >= 3"], lambda x: (x > -3) * 1 + (x >= 3))


def bounds(lo, hi):
    return ([f"x < {lo}", "between", f"x > {hi}"], lambda x: (x >= lo) * 1 + (x > hi))


def erf_gelu(x, out, form):
    """GELU as exporters write it: torch's grouping, or others."""
    if form == "torch":
        return [const("s2", SQRT2), const("one", 1.0), const("half", 0.5),
                helper.make_node("Div", [x, "s2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
                helper.make_node("Add", ["e", "one"], ["a"]),
                helper.make_node("Mul", [x, "a"], ["m"]),
                helper.make_node("Mul", ["m", "half"], [out], name="gelu")]
    return [const("is2", 1 / SQRT2), const("one", 1.0), const("half", 0.5),
            helper.make_node("Mul", [x, "half"], ["xh"]),
            helper.make_node("Mul", ["is2", x], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
            helper.make_node("Add", ["one", "e"], ["a"]),
            helper.make_node("Mul", ["a", "xh"], [out], name="gelu")]


def tanh_gelu(x, out):
    """nn.GELU(approximate='tanh') as torch 1.13 exports it."""
    return [helper.make_node("Mul", [x, x], ["sq"]), helper.make_node("Mul", [x, "sq"], ["cube"]),
            const("k1", 0.044715), helper.make_node("Mul", ["k1", "cube"], ["kc"]),
            helper.make_node("Add", [x, "kc"], ["inner"]), const("k2", math.sqrt(2 / math.pi)),
            helper.make_node("Mul", ["k2", "inner"], ["arg"]),
            helper.make_node("Tanh", ["arg"], ["t"]), const("one", 1.0),
            helper.make_node("Add", ["one", "t"], ["a"]), helper.make_node("Mul", [x, "a"], ["m"]),
            const("half", 0.5), helper.make_node("Mul", ["half", "m"], [out], name="gelu")]


def layernorm_nodes(x, out, eps=1e-6, w="lnw", b="lnb", pow_form=True):
    """nn.LayerNorm over the last axis as torch exports it before opset 17."""
    sq = ([const("two", 2.0), helper.make_node("Pow", ["dev", "two"], ["sq"])] if pow_form
          else [helper.make_node("Mul", ["dev", "dev"], ["sq"])])
    nodes = [helper.make_node("ReduceMean", [x], ["mu"], axes=[-1]),
             helper.make_node("Sub", [x, "mu"], ["dev"])] + sq + [
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[-1]), const("eps", eps),
        helper.make_node("Add", ["var", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["dev", "sd"], ["nrm" if w else out])]
    if w:
        nodes.append(helper.make_node("Mul", ["nrm", w], ["sc" if b else out]))
    if b:
        nodes.append(helper.make_node("Add", ["sc", b], [out]))
    return nodes


def ln_inits(c):
    return [init("lnw", RNG.uniform(0.5, 1.5, c)), init("lnb", RNG.normal(0, 0.1, c))]


def convnext_block(c=16, decomposed=False, opset=13):
    """ConvNeXt's block: dwconv, permute, LayerNorm, Linear, GELU, Linear,
    permute, layer scale, residual."""
    ln = (layernorm_nodes("p", "n") if decomposed else
          [helper.make_node("LayerNormalization", ["p", "lnw", "lnb"], ["n"], axis=-1,
                            epsilon=1e-6)])
    nodes = [helper.make_node("Conv", ["x", "dw", "dwb"], ["c"], group=c, pads=[3, 3, 3, 3]),
             helper.make_node("Transpose", ["c"], ["p"], perm=[0, 2, 3, 1])] + ln + [
        helper.make_node("MatMul", ["n", "w1"], ["h"]), helper.make_node("Add", ["b1", "h"], ["hb"])
    ] + erf_gelu("hb", "g", "torch") + [
        helper.make_node("MatMul", ["g", "w2"], ["o"]), helper.make_node("Add", ["b2", "o"], ["ob"]),
        helper.make_node("Transpose", ["ob"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["layer_scale", "t"], ["s"]),
        helper.make_node("Add", ["s", "x"], ["y"])]
    inits = [init("dw", RNG.normal(0, 0.3, (c, 1, 7, 7))), init("dwb", RNG.normal(0, 0.1, c)),
             init("w1", RNG.normal(0, 3 / c ** 0.5, (c, 4 * c))), init("b1", RNG.normal(0, 1, 4 * c)),
             init("w2", RNG.normal(0, 1 / c ** 0.5, (4 * c, c))), init("b2", RNG.normal(0, 0.1, c)),
             init("layer_scale", RNG.uniform(0.5, 1.5, (c, 1, 1)))] + ln_inits(c)
    return model(nodes, inits, (c, 8, 8), opset)


def shuffle_model(shape_first):
    """torchvision's channel_shuffle after a concat of two halves."""
    s1, s2 = [shape_first, 2, 4, 6, 6], [shape_first, -1 if shape_first == 0 else 8, 6, 6]
    return model([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                  helper.make_node("Concat", ["x", "c"], ["cat"], axis=1),
                  helper.make_node("Reshape", ["cat", "s1"], ["r"]),
                  helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
                  helper.make_node("Reshape", ["t", "s2"], ["y"])],
                 conv_inits() + [init("s1", s1, np.int64), init("s2", s2, np.int64)])


def chunk_model(kind, opset):
    """ShuffleNetV2's x.chunk(2, dim=1): one half passes, one is convolved."""
    if kind == "split":
        sp = [helper.make_node("Split", ["x", "sizes"] if opset >= 13 else ["x"], ["x1", "x2"],
                               axis=1, **({} if opset >= 13 else {"split": [2, 2]}))]
        inits = [init("sizes", [2, 2], np.int64)] if opset >= 13 else []
    else:
        sp = [helper.make_node("Slice", ["x", "s0", "e0", "ax"], ["x1"]),
              helper.make_node("Slice", ["x", "s1", "e1", "ax"], ["x2"])]
        inits = [init(n, v, np.int64) for n, v in
                 (("s0", [0]), ("e0", [2]), ("s1", [2]), ("e1", [2 ** 62]), ("ax", [1]))]
    return model(sp + [helper.make_node("Conv", ["x2", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                       helper.make_node("Relu", ["c"], ["r"]),
                       helper.make_node("Concat", ["x1", "r"], ["y"], axis=1)],
                 inits + [conv_w(2, 2, 3), init("b", [0.1, -0.1])], opset=opset)


def se_model(vector_gate):
    """Squeeze-excitation: a gate of one value per channel times the tensor."""
    if vector_gate:  # pool -> Flatten -> Gemm -> Sigmoid -> x[:, :, None, None]
        gate = [helper.make_node("GlobalMaxPool", ["c"], ["p"]),
                helper.make_node("Flatten", ["p"], ["f"]),
                helper.make_node("Gemm", ["f", "gw", "gb"], ["l"], transB=1),
                helper.make_node("Sigmoid", ["l"], ["s"]), const("a2", np.array([2])),
                helper.make_node("Unsqueeze", ["s", "a2"], ["u"]), const("a3", np.array([3])),
                helper.make_node("Unsqueeze", ["u", "a3"], ["g"])]
        inits = [init("gw", RNG.normal(0, 0.01, (4, 4))), init("gb", [-14.0, -1.0, 1.0, 14.0])]
    else:  # pool -> 1x1 conv -> Relu -> 1x1 conv -> Sigmoid
        gate = [helper.make_node("GlobalAveragePool", ["c"], ["p"]),
                helper.make_node("Conv", ["p", "f1", "f1b"], ["q"]),
                helper.make_node("Relu", ["q"], ["r"]),
                helper.make_node("Conv", ["r", "f2", "f2b"], ["l"]),
                helper.make_node("Sigmoid", ["l"], ["g"])]
        inits = [init("f1", RNG.normal(0, 2, (2, 4, 1, 1))), init("f1b", [0.1, -0.2]),
                 init("f2", RNG.normal(0, 0.05, (4, 2, 1, 1))),
                 init("f2b", [-14.0, -1.0, 1.0, 14.0])]
    return model([conv()] + gate + [helper.make_node("Mul", ["g", "c"], ["y"])],
                 conv_inits() + inits)


def act_model(nodes, inits=(), opset=13):
    return model(nodes, inits, opset=opset)


CASES = []


def case(name, m, ops, regimes=None, after=None, absent=(), scale=12.0):
    """m: the model; ops: IR ops the lowered graph must hold ({op: count});
    absent: IR ops it must not hold; regimes: (value name, (names, fn)) to
    check in the reference; after: every op left after the passes (but
    layout reorders), with counts: what was fused or folded is gone."""
    CASES.append(dict(name=name, model=m, ops=ops, regimes=regimes or [], after=after,
                      absent=absent, scale=scale))


def build_cases():
    def r(op, out, **attrs):
        return helper.make_node(op, ["x"], [out], **attrs)

    # ---- Clip: ReLU6 and other bounds, attributes and inputs
    case("Clip 0..6 from inputs (ReLU6), opset 13",
         act_model([const("lo", 0.0), const("hi", 6.0),
                    helper.make_node("Clip", ["x", "lo", "hi"], ["y"])]),
         {"clamp": 1}, [("x", bounds(0, 6))])
    case("Clip 0..6 from attributes, opset 6",
         act_model([helper.make_node("Clip", ["x"], ["y"], min=0.0, max=6.0)], opset=6),
         {"clamp": 1}, [("x", bounds(0, 6))])
    case("Clip with max only, opset 13",
         act_model([const("hi", 0.5), helper.make_node("Clip", ["x", "", "hi"], ["y"])]),
         {"clamp": 1}, [("x", (["x <= 0.5", "x > 0.5"], lambda x: (x > 0.5) * 1))])
    case("Clip 0..inf is a ReLU, opset 11",
         act_model([const("lo", 0.0), helper.make_node("Clip", ["x", "lo"], ["y"])], opset=11),
         {"relu": 1}, [("x", (["x < 0", "x >= 0"], lambda x: (x >= 0) * 1))])
    case("Conv -> Clip 0..6: one kernel (ReLU6 in its epilogue)",
         model([conv(), const("lo", 0.0), const("hi", 6.0),
                helper.make_node("Clip", ["c", "lo", "hi"], ["y"])], conv_inits()),
         {"conv2d": 1, "clamp": 1}, [("c", bounds(0, 6))], after={"conv2d": 1})
    # ---- Sigmoid, HardSigmoid, HardSwish
    case("Sigmoid", act_model([r("Sigmoid", "y")]), {"sigmoid": 1}, [("x", TAILS)])
    case("HardSigmoid defaults (0.2, 0.5)", act_model([r("HardSigmoid", "y")]),
         {"hardsigmoid": 1}, [("x", bounds(-2.5, 2.5))])
    case("HardSigmoid 1/6, 0.5 (nn.Hardsigmoid)",
         act_model([r("HardSigmoid", "y", alpha=1 / 6, beta=0.5)]), {"hardsigmoid": 1},
         [("x", KINKS)])
    case("HardSwish, opset 14", act_model([r("HardSwish", "y")], opset=14), {"hardswish": 1},
         [("x", KINKS)])
    case("x * HardSigmoid(x): hardswish at opset 13",
         act_model([helper.make_node("HardSigmoid", ["x"], ["h"], alpha=1 / 6, beta=0.5),
                    helper.make_node("Mul", ["x", "h"], ["y"])]),
         {"hardswish": 1}, [("x", KINKS)], absent=("mul", "hardsigmoid"))
    case("HardSigmoid(x) * x, opset 11, after a conv: one kernel",
         model([conv(), helper.make_node("HardSigmoid", ["c"], ["h"], alpha=1 / 6, beta=0.5),
                helper.make_node("Mul", ["h", "c"], ["y"])], conv_inits(), opset=11),
         {"conv2d": 1, "hardswish": 1}, [("c", KINKS)], after={"conv2d": 1}, absent=("mul",))
    case("x * HardSigmoid(x) with alpha 0.2 is no hardswish",
         act_model([helper.make_node("HardSigmoid", ["x"], ["h"]),
                    helper.make_node("Mul", ["x", "h"], ["y"])]),
         {"hardsigmoid": 1, "mul": 1}, [("x", bounds(-2.5, 2.5))], absent=("hardswish",))
    case("Clip(0.2 * x + 0.5, 0, 1): a HardSigmoid written out",
         act_model([const("a", 0.2), const("b", 0.5), const("lo", 0.0), const("hi", 1.0),
                    helper.make_node("Mul", ["x", "a"], ["ax"]),
                    helper.make_node("Add", ["ax", "b"], ["axb"]),
                    helper.make_node("Clip", ["axb", "lo", "hi"], ["y"])]),
         {"hardsigmoid": 1}, [("x", bounds(-2.5, 2.5))], absent=("scale", "scaleshift", "clamp"))
    # ---- SiLU
    case("x * Sigmoid(x): silu",
         act_model([helper.make_node("Sigmoid", ["x"], ["s"]),
                    helper.make_node("Mul", ["x", "s"], ["y"])]),
         {"silu": 1}, [("x", TAILS)], absent=("mul", "sigmoid"))
    case("Conv -> Sigmoid(c) * c: one kernel (SiLU in its epilogue)",
         model([conv(), helper.make_node("Sigmoid", ["c"], ["s"]),
                helper.make_node("Mul", ["s", "c"], ["y"])], conv_inits(c=4, scale=10)),
         {"conv2d": 1, "silu": 1}, [("c", TAILS)], after={"conv2d": 1}, absent=("mul", "sigmoid"))
    # ---- GELU
    case("GELU, torch's erf form", act_model(erf_gelu("x", "y", "torch")), {"gelu": 1},
         [("x", TAILS)], absent=("mul", "scale"))
    case("GELU, erf form grouped otherwise (x * 0.5 * (1 + erf(x * 1/sqrt2)))",
         act_model(erf_gelu("x", "y", "other")), {"gelu": 1}, [("x", TAILS)],
         absent=("mul", "scale"))
    case("GELU, torch's tanh form", act_model(tanh_gelu("x", "y")), {"gelu": 1},
         [("x", TAILS)], absent=("mul", "scale"))
    # ---- products of run-time tensors, constants
    case("Mul of two tensors of one shape",
         model([conv(), helper.make_node("Mul", ["c", "x"], ["y"])], conv_inits()),
         {"mul": 1})
    case("squeeze-excitation: a [N, C, 1, 1] gate from 1x1 convs", se_model(False),
         {"mul": 1, "sigmoid": 1}, [("l", TAILS)])
    case("a gate from a Gemm, unsqueezed to [N, C, 1, 1]", se_model(True),
         {"mul": 1, "sigmoid": 1, "linear": 1, "adaptive_maxpool": 1}, [("l", TAILS)])
    case("Mul by a constant [C, 1, 1]: a parameter and a mul, folded into the conv",
         model([conv(), helper.make_node("Mul", ["c", "gamma"], ["y"])],
               conv_inits() + [init("gamma", RNG.uniform(0.5, 1.5, (4, 1, 1)))]),
         {"parameter": 1, "mul": 1}, after={"conv2d": 1})
    # ---- LayerNorm, ConvNeXt
    c = 8
    case("LayerNormalization (opset 17) of a channels-last view, and back",
         model([helper.make_node("Transpose", ["x"], ["p"], perm=[0, 2, 3, 1]),
                helper.make_node("LayerNormalization", ["p", "lnw", "lnb"], ["n"], epsilon=1e-6),
                helper.make_node("Transpose", ["n"], ["y"], perm=[0, 3, 1, 2])],
               ln_inits(c), (c, 5, 5), 17),
         {"layernorm": 1})
    case("LayerNorm at opset 13 (ReduceMean, Sub, Pow, ...) of a channels-last view",
         model([helper.make_node("Transpose", ["x"], ["p"], perm=[0, 2, 3, 1])]
               + layernorm_nodes("p", "n")
               + [helper.make_node("Transpose", ["n"], ["y"], perm=[0, 3, 1, 2])],
               ln_inits(c), (c, 5, 5), 13),
         {"layernorm": 1}, absent=("mul", "scaleshift", "parameter"))
    case("LayerNorm at opset 11 without weight and bias, x*x form, of a vector",
         model(layernorm_nodes("x", "y", 1e-5, None, None, False), [], (12,), 11),
         {"layernorm": 1}, absent=("mul",))
    case("LayerNormalization of a vector [N, F], opset 17",
         model([helper.make_node("LayerNormalization", ["x", "lnw", "lnb"], ["y"])],
               ln_inits(12), (12,), 17), {"layernorm": 1})
    case("ConvNeXt block, opset 17: no transposes, two pointwise linears, GELU fused",
         convnext_block(decomposed=False, opset=17),
         {"conv2d": 3, "layernorm": 1, "gelu": 1, "parameter": 1, "mul": 1, "add": 1},
         [("hb", TAILS)], after={"conv2d": 3, "layernorm": 1})
    case("ConvNeXt block, opset 13 (LayerNorm and GELU written out)",
         convnext_block(decomposed=True, opset=13),
         {"conv2d": 3, "layernorm": 1, "gelu": 1, "parameter": 1, "mul": 1, "add": 1},
         [("hb", TAILS)], after={"conv2d": 3, "layernorm": 1})
    # ---- ShuffleNet
    case("channel shuffle (Reshape, Transpose, Reshape), batch copied by 0", shuffle_model(0),
         {"channel_shuffle": 1, "concat": 1})
    case("channel shuffle, batch -1", shuffle_model(-1), {"channel_shuffle": 1})
    case("Split of the channels, opset 13", chunk_model("split", 13), {"slice": 2})
    case("Split of the channels, opset 11 ('split' attribute)", chunk_model("split", 11),
         {"slice": 2})
    case("Slice of the channels (x.chunk as torch exports it)", chunk_model("slice", 13),
         {"slice": 2})
    # ---- pools and squeezes
    case("GlobalMaxPool, Squeeze to [N, C]",
         model([helper.make_node("GlobalMaxPool", ["x"], ["p"]), const("ax", np.array([2, 3])),
                helper.make_node("Squeeze", ["p", "ax"], ["y"])]),
         {"adaptive_maxpool": 1, "flatten": 1})


# ------------------------------------------------------------------- runner

def ir_ops(cnncc_exe, path, work, level):
    """{op: count} of the IR at -O0 (as lowered) or -O2 (after the passes),
    graph inputs and layout reorders left out."""
    out = os.path.join(work, "ir.txt")
    r = subprocess.run([cnncc_exe, path, "--emit=ir", level, "-o", out, "-q"],
                       capture_output=True, text=True)
    if r.returncode:
        return None, r.stderr
    ops = {}
    for line in open(out):
        m = re.match(r"\s*%\d+ (\w+) ", line)
        if m and m.group(1) not in ("input", "reorder"):
            ops[m.group(1)] = ops.get(m.group(1), 0) + 1
    return ops, ""


def regime_shares(m, feeds, regimes):
    """The share of each regime of each checked value; None if one is empty."""
    if not regimes:
        return "", True
    probe = onnx.ModelProto()
    probe.CopyFrom(m)
    names = [v for v, _ in regimes]
    for v in names:
        if v not in [o.name for o in probe.graph.output]:
            probe.graph.output.append(helper.make_tensor_value_info(v, TensorProto.FLOAT, None))
    vals = dict(zip([o.name for o in probe.graph.output], evaluate(probe, feeds)))
    text, ok = [], True
    for v, (labels, fn) in regimes:
        k = fn(vals[v])
        shares = [float((k == i).mean()) for i in range(len(labels))]
        ok &= all(s > 0 for s in shares)
        text.append(f"{v}: " + ", ".join(f"{lab} {100 * s:.0f}%" for lab, s in zip(labels, shares)))
    return "; ".join(text), ok


def run_case(cnncc_exe, work, c):
    path = os.path.join(work, re.sub(r"\W+", "_", c["name"])[:60] + ".onnx")
    onnx.save(c["model"], path)
    x_info = c["model"].graph.input[0].type.tensor_type.shape
    shape = [2] + [d.dim_value for d in x_info.dim[1:]]
    rng = np.random.default_rng(zlib.crc32(c["name"].encode()))
    x = (rng.uniform(-1, 1, shape) * c["scale"]).astype(np.float32)
    feeds = {"x": x}
    ref = evaluate(c["model"], feeds)[0]
    why = []
    shares, reached = regime_shares(c["model"], feeds, c["regimes"])
    if not reached:
        why.append(f"a regime is never reached ({shares})")
    ops, err = ir_ops(cnncc_exe, path, work, "-O0")
    if ops is None:
        return False, f"cnncc refused it: {err.strip()}", shares
    for op, k in c["ops"].items():
        if ops.get(op, 0) != k:
            why.append(f"IR has {ops.get(op, 0)} {op}, expected {k} ({ops})")
    for op in c["absent"]:
        if ops.get(op):
            why.append(f"IR has {ops[op]} {op}, expected none ({ops})")
    so = path[:-5] + ".so"  # a name of its own: dlopen keeps a loaded path
    r = subprocess.run([cnncc_exe, path, "-o", so, "-q"], capture_output=True, text=True)
    if r.returncode:
        return False, f"cnncc exit {r.returncode}: {r.stderr.strip()}", shares
    with cnncc.load(so, threads=1) as net:
        y = net(x)
    os.unlink(so)
    if y.shape != ref.shape:
        why.append(f"output shape {y.shape}, expected {ref.shape}")
    else:
        err = float(np.abs(y - ref).max())
        tol = ATOL + RTOL * float(np.abs(ref).max())
        if not err <= tol:
            why.append(f"max|y - ref| = {err:.3g} > {tol:.3g}")
    if c["after"] is not None:
        after, _ = ir_ops(cnncc_exe, path, work, "-O2")
        if after != c["after"]:
            why.append(f"after the passes the IR holds {after}, expected {c['after']}")
    return not why, "; ".join(why), shares


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cnncc")
    ap.add_argument("work")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    build_cases()
    failures = 0
    for c in CASES:
        if a.only not in c["name"]:
            continue
        ok, why, shares = run_case(a.cnncc, a.work, c)
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {c['name']}" + (f": {why}" if why else ""))
        if shares:
            print(f"     regimes: {shares}")
    print(f"patterns: {len(CASES)} cases, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
