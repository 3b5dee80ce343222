#!/usr/bin/env python3
"""handmade.py: regressions written by hand rather than reduced from a
seed: the block shapes of the modern networks whose channel counts
pad-channels pads (MobileNetV3's 72 with SE and hardswish, ShuffleNetV2's
58 beside a channel_shuffle, RegNetY's 104 in groups of 8), with an
infinity or a NaN in the input.

    handmade.py --out tests/difftest/regressions

Each network is a twin (tests/difftest/twin.py, the PyTorch reference in
float64) written out like reduce.py's regressions: NAME.yaml, its weights
NAME.safetensors (the twin's, from a fixed seed) and NAME.ref.json (finite
inputs and PyTorch's outputs; then the same inputs with +inf in sample 0,
-inf in sample 1, NaN in sample 2 at one element, and PyTorch's outputs).
difftest.py --replay compiles them in every configuration and asks for
NaN and infinities exactly where PyTorch has them.

Where the infinity enters, a 1x1 conv mixes it into every channel with
weights of both signs; the activation after it saturates (relu6 or
hardsigmoid: finite for +-inf), so PyTorch's outputs are finite for the
infinite samples. A padded channel of that conv computed by zero weights
would hold 0 * inf = NaN and spread it into every real output (the bug of
seeds 4019-4283); its kernel must store 0 there instead.
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reduce import write_spec  # noqa: E402
from twin import Twin, write_safetensors  # noqa: E402

BATCH = 3
SEED = 20261206


def L(name, op, ins, **attrs):
    return {"name": name, "op": op, "in": ins, "attrs": attrs}


def se(p, x, c, squeeze, gate):
    """squeeze-and-excitation: global pool, 1x1 down + relu, 1x1 up + gate, mul"""
    return [L(p + "_pool", "global_avgpool", [x]),
            L(p + "_fc1", "conv2d", [p + "_pool"], out=squeeze, kernel=1),
            L(p + "_relu", "relu", [p + "_fc1"]),
            L(p + "_fc2", "conv2d", [p + "_relu"], out=c, kernel=1),
            L(p + "_gate", gate, [p + "_fc2"]),
            L(p + "_scale", "mul", [x, p + "_gate"])]


def mobilenet_v3():
    """MobileNetV3-Large's 24 -> 72 -> 40 block (kernel 5, SE), then its
    40 -> 120 -> 40 block with hardswish and the residual."""
    n = [L("e1", "conv2d", ["x"], out=72, kernel=1, bias=False),
         L("e1_bn", "batchnorm", ["e1"]),
         L("e1_act", "relu6", ["e1_bn"]),  # saturates the infinity
         L("d1", "conv2d", ["e1_act"], out=72, kernel=5, pad=2, groups=72, bias=False),
         L("d1_bn", "batchnorm", ["d1"]),
         L("d1_act", "hardswish", ["d1_bn"])]
    n += se("se1", "d1_act", 72, 24, "hardsigmoid")
    n += [L("p1", "conv2d", ["se1_scale"], out=40, kernel=1, bias=False),
          L("p1_bn", "batchnorm", ["p1"]),
          L("e2", "conv2d", ["p1_bn"], out=120, kernel=1, bias=False),
          L("e2_bn", "batchnorm", ["e2"]),
          L("e2_act", "hardswish", ["e2_bn"]),
          L("d2", "conv2d", ["e2_act"], out=120, kernel=3, pad=1, groups=120, bias=False),
          L("d2_bn", "batchnorm", ["d2"]),
          L("d2_act", "hardswish", ["d2_bn"])]
    n += se("se2", "d2_act", 120, 32, "hardsigmoid")
    n += [L("p2", "conv2d", ["se2_scale"], out=40, kernel=1, bias=False),
          L("p2_bn", "batchnorm", ["p2"]),
          L("res", "add", ["p2_bn", "p1_bn"]),
          L("head", "conv2d", ["res"], out=16, kernel=1)]
    return {"name": "mobilenet_v3_block", "inputs": [{"name": "x", "shape": [24, 6, 6]}],
            "outputs": [{"name": "head", "node": "head"}], "nodes": n}


def shufflenet_v2():
    """ShuffleNetV2 1.0's stride-1 unit of 116 channels: chunk into two 58,
    1x1 + BN + act, depthwise 3x3 + BN, 1x1 + BN + relu on one half, concat,
    channel_shuffle(2); twice."""
    n, x = [], "x"
    for u in (1, 2):
        p = f"u{u}"
        n += [L(p + "_a", "chunk", [x], chunks=2, index=0),
              L(p + "_b", "chunk", [x], chunks=2, index=1),
              L(p + "_c1", "conv2d", [p + "_b"], out=58, kernel=1, bias=False),
              L(p + "_bn1", "batchnorm", [p + "_c1"]),
              L(p + "_act1", "relu6" if u == 1 else "relu", [p + "_bn1"]),
              L(p + "_dw", "conv2d", [p + "_act1"], out=58, kernel=3, pad=1, groups=58,
                bias=False),
              L(p + "_bn2", "batchnorm", [p + "_dw"]),
              L(p + "_c2", "conv2d", [p + "_bn2"], out=58, kernel=1, bias=False),
              L(p + "_bn3", "batchnorm", [p + "_c2"]),
              L(p + "_act3", "relu", [p + "_bn3"]),
              L(p + "_cat", "concat", [p + "_a", p + "_act3"]),
              L(p + "_shuf", "channel_shuffle", [p + "_cat"], groups=2)]
        x = p + "_shuf"
    return {"name": "shufflenet_v2_unit", "inputs": [{"name": "x", "shape": [116, 4, 4]}],
            "outputs": [{"name": x, "node": x}], "nodes": n}


def regnet_y():
    """RegNetY-400MF's stage-2 block: 48 -> 104 channels, a 3x3 conv in 13
    groups of 8 (stride 2), SE with sigmoid, the projection shortcut."""
    n = [L("a", "conv2d", ["x"], out=104, kernel=1, bias=False),
         L("a_bn", "batchnorm", ["a"]),
         L("a_act", "relu6", ["a_bn"]),  # saturates the infinity
         L("b", "conv2d", ["a_act"], out=104, kernel=3, stride=2, pad=1, groups=13, bias=False),
         L("b_bn", "batchnorm", ["b"]),
         L("b_act", "relu", ["b_bn"])]
    n += se("se", "b_act", 104, 12, "sigmoid")
    n += [L("c", "conv2d", ["se_scale"], out=104, kernel=1, bias=False),
          L("c_bn", "batchnorm", ["c"]),
          L("proj", "conv2d", ["x"], out=104, kernel=1, stride=2, bias=False),
          L("proj_bn", "batchnorm", ["proj"]),
          L("sum", "add", ["c_bn", "proj_bn"]),
          L("sum_act", "hardsigmoid", ["sum"]),  # an infinity from the shortcut saturates too
          L("pool", "global_avgpool", ["sum_act"]),
          L("fc", "linear", ["pool"], out=10)]
    return {"name": "regnet_y_block", "inputs": [{"name": "x", "shape": [48, 4, 4]}],
            "outputs": [{"name": "fc", "node": "fc"}], "nodes": n}


def conv3x3():
    """The padded outputs of 3x3 convs (the direct, Winograd and NCHW
    kernels): 16 -> 24 channels (padded to 32), relu6, 24 -> 40 (to 48),
    hardsigmoid, a 1x1 conv to 8; and a 3-channel stem 3x3 stride 2 to 24."""
    n = [L("c1", "conv2d", ["x"], out=24, kernel=3, pad=1),
         L("c1_act", "relu6", ["c1"]),
         L("c2", "conv2d", ["c1_act"], out=40, kernel=3, pad=1),
         L("c2_act", "hardsigmoid", ["c2"]),
         L("c3", "conv2d", ["c2_act"], out=8, kernel=1),
         L("s1", "conv2d", ["y"], out=24, kernel=3, stride=2, pad=1),
         L("s1_act", "relu6", ["s1"]),
         L("s2", "conv2d", ["s1_act"], out=8, kernel=1)]
    return {"name": "conv3x3_padded", "inputs": [{"name": "x", "shape": [16, 6, 6]},
                                                 {"name": "y", "shape": [3, 8, 8]}],
            "outputs": [{"name": "c3", "node": "c3"}, {"name": "s2", "node": "s2"}], "nodes": n}


def split_reads_padded():
    """Three 1x1 convs of a 10-channel 1x1 tensor that pad-channels pads to
    16, merged by fold-1x1 into one split conv, which reads a slice of the
    real 10 channels: its weight's input axis must stay 10 (it was padded
    to 16: an internal error, seeds 406, 617 and 723 of the fold-shuffle
    campaign)."""
    n = [L("c", "conv2d", ["x"], out=10, kernel=1),
         L("b0", "conv2d", ["c"], out=10, kernel=1, bias=False),
         L("b1", "conv2d", ["c"], out=8, kernel=1),
         L("b2", "conv2d", ["c"], out=5, kernel=1),
         L("cat", "concat", ["b0", "b1", "b2"]),
         L("ln", "layernorm", ["cat"])]
    return {"name": "split_conv_reads_a_padded_input", "inputs": [{"name": "x", "shape": [6, 1, 1]}],
            "outputs": [{"name": "ln", "node": "ln"}], "nodes": n}


NETS = {
    "conv3x3_padded_outputs_nonfinite": (conv3x3, "3x3 convs with padded outputs"),
    "mobilenet_v3_block_72_se_hardswish_nonfinite": (mobilenet_v3, "MobileNetV3 blocks"),
    "shufflenet_v2_58_channel_shuffle_nonfinite": (shufflenet_v2, "ShuffleNetV2 units"),
    "regnet_y_groups_of_8_nonfinite": (regnet_y, "a RegNetY block"),
    "split_conv_reads_a_padded_input": (
        split_reads_padded, "a fold-1x1 split conv reading a padded tensor",
        "pad-channels padded the input axis of a split conv's weight, which reads a\n"
        "slice of the real channels: internal error at -O2 (seeds 406, 617, 723)."),
}


def write(net, base, what, note=None):
    rng = np.random.default_rng(SEED)
    xs = {i["name"]: rng.standard_normal([BATCH] + i["shape"]).astype(np.float32)
          for i in net["inputs"]}
    nf = {}
    for name, x in xs.items():
        y = x.copy().reshape(BATCH, -1)
        for s, v in enumerate([np.inf, -np.inf, np.nan]):
            y[s, int(rng.integers(0, y.shape[1]))] = v
        nf[name] = y.reshape(x.shape)
    twin = Twin(net, SEED)
    ref, shapes = twin.run(xs, BATCH)
    with np.errstate(all="ignore"):
        ref_nf, _ = Twin(net, SEED).run(nf, BATCH)
    comment = (f"pad-channels and non-finite inputs: {what}, written by hand "
               f"(tests/difftest/handmade.py).\n" +
               (note or "Padded channels must not turn an infinity into NaN in real outputs: "
                "PyTorch's are finite for the infinite samples."))
    write_spec(net, base + ".yaml", comment)
    write_safetensors(base + ".safetensors", twin.params)
    outs = [{"name": o["name"], "shape": shapes[o["node"]]} for o in net["outputs"]]
    doc = {"batch": BATCH, "inputs_meta": net["inputs"], "outputs_meta": outs}
    for key, ins, rs in (("", xs, ref), ("_nonfinite", nf, ref_nf)):
        doc["inputs" + key] = {k: [float(v) for v in a.reshape(-1)] for k, a in ins.items()}
        doc["outputs" + key] = {o["name"]: [float(v) for v in rs[o["name"]].reshape(-1)]
                                for o in net["outputs"]}
    with open(base + ".ref.json", "w") as f:
        json.dump(doc, f)
    fin = {o["name"]: int(np.isfinite(ref_nf[o["name"]]).sum()) for o in net["outputs"]}
    print(f"handmade: wrote {base}.yaml, .safetensors, .ref.json; finite outputs "
          f"with non-finite inputs: {fin}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="directory (tests/difftest/regressions)")
    args = ap.parse_args()
    for name, (make, what, *note) in NETS.items():
        write(make(), os.path.join(args.out, name), what, *note)


if __name__ == "__main__":
    main()
