#!/usr/bin/python3
"""Reference data for cnncc's end-to-end tests, computed with PyTorch.

    /usr/bin/python3 tests/e2e/make_ref.py NETWORK OUTDIR [--force]

NETWORK is one of the zoo specs (examples/NETWORK.yaml) listed in NETWORKS
below. The script builds the torchvision model (or the PyTorch module of
lenet5.py or zoo_models.py, written from the paper) in eval mode with seeded random weights, makes every
BatchNorm non-trivial (running_mean ~ N(0, 0.1), running_var ~ U(0.5, 1.5),
weight ~ U(0.5, 1.5), bias ~ N(0, 0.1)), draws every conv/linear weight
He-normal (std sqrt(2/fan_in), so the signal neither vanishes nor explodes
and the output really depends on the input: torchvision's GoogLeNet init,
std 0.01, would leave little but the classifier's bias) and every bias
U(-0.1, 0.1), makes LayerNorms non-trivial as BatchNorms and ConvNeXt's
layer scale U(0.5, 1.5) (not 1e-6); in residual networks -- torchvision's
BasicBlock, Bottleneck and RegNet's ResBottleneckBlock, the pre-activation
and stochastic-depth units of zoo_models.py -- the last layer of each
residual branch is then scaled by 0.25, so that the output of 50 stacked
units stays moderate and every unit counts; last, it spreads the input of
each activation of the networks in SPREAD so that every regime of every
nonlinearity is reached
(the share of each regime of each activation module is printed; a regime
never reached is an error), then writes into OUTDIR:

    weights.safetensors    the state_dict, float32, num_batches_tracked dropped
    input_b1.bin           seeded input for batch 1 (raw LE float32; see make_input)
    output_b1.bin          PyTorch's output for it
    input_bN.bin, output_bN.bin   the same for the network's other batch size
    manifest.json          network, parameter count, shapes, file names

Every file is written under a private temporary name and renamed into
place, and manifest.json last, so its presence means the directory is
complete (even if two runs race); the script then does nothing unless --force is given. The
parameter count (model.parameters(), as cnn_info.num_params counts) is
printed and checked against NETWORKS (REFERENCE.md's figures for the
torchvision models). `make_ref.py --list` prints the network names.

No internet and no pretrained downloads are needed; safetensors is written
by hand (there is no safetensors package): an 8-byte little-endian header
length, the JSON header padded with spaces to a multiple of 8, the data.
"""

import argparse
import collections
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# torch, torchvision and the model modules are imported by load_torch(), only
# when data has to be made: checking that it is up to date (what every ctest
# run does) then takes milliseconds instead of seconds.
torch = torchvision = TV = zoo = LeNet5 = None


def load_torch():
    global torch, torchvision, TV, zoo, LeNet5
    import torch as _torch
    import torchvision as _torchvision
    import zoo_models as _zoo
    from lenet5 import LeNet5 as _LeNet5
    torch, torchvision, TV, zoo, LeNet5 = _torch, _torchvision, _torchvision.models, _zoo, _LeNet5

# name -> Net(constructor, per-sample input shape, parameter count, batch
# sizes, output name). The count is model.parameters() of the module, as
# cnn_info.num_params counts it: for torchvision models the figure of
# REFERENCE.md, for the zoo_models.py modules ours (the papers' figures are
# beside them). The output name is the spec's last layer, which the compiled
# .so reports. The five original networks keep batches 1 and 3; the others
# run 1 and 2 (kernels are slow: ~0.15-0.3 s per GMAC and sample today).
# Bumped whenever the weights or inputs drawn change: older data is redone.
REF_VERSION = 2

Net = collections.namedtuple("Net", "ctor shape params batches output")
IMAGENET = [3, 224, 224]
CIFAR = [3, 32, 32]

NETWORKS = {
    # the original five
    "lenet5": Net(lambda: LeNet5(), [1, 32, 32], 61_706, (1, 3), "output"),
    "alexnet": Net(lambda: TV.alexnet(), IMAGENET, 61_100_840, (1, 3), "classifier.6"),
    "vgg16": Net(lambda: TV.vgg16(), IMAGENET, 138_357_544, (1, 3), "classifier.6"),
    "resnet50": Net(lambda: TV.resnet50(), IMAGENET, 25_557_032, (1, 3), "fc"),
    "googlenet": Net(lambda: TV.googlenet(aux_logits=False, transform_input=False,
                                          init_weights=True),
                     IMAGENET, 6_624_904, (1, 3), "fc"),
    # torchvision models (counts: REFERENCE.md)
    "vgg19": Net(lambda: TV.vgg19(), IMAGENET, 143_667_240, (1, 2), "classifier.6"),
    "resnet18": Net(lambda: TV.resnet18(), IMAGENET, 11_689_512, (1, 2), "fc"),
    "resnet34": Net(lambda: TV.resnet34(), IMAGENET, 21_797_672, (1, 2), "fc"),
    "resnet101": Net(lambda: TV.resnet101(), IMAGENET, 44_549_160, (1, 2), "fc"),
    "resnet152": Net(lambda: TV.resnet152(), IMAGENET, 60_192_808, (1, 2), "fc"),
    "resnext50_32x4d": Net(lambda: TV.resnext50_32x4d(), IMAGENET, 25_028_904, (1, 2), "fc"),
    "wide_resnet50_2": Net(lambda: TV.wide_resnet50_2(), IMAGENET, 68_883_240, (1, 2), "fc"),
    "densenet121": Net(lambda: TV.densenet121(), IMAGENET, 7_978_856, (1, 2), "classifier"),
    "densenet201": Net(lambda: TV.densenet201(), IMAGENET, 20_013_928, (1, 2), "classifier"),
    "squeezenet1_0": Net(lambda: TV.squeezenet1_0(), IMAGENET, 1_248_424, (1, 2), "flatten"),
    "squeezenet1_1": Net(lambda: TV.squeezenet1_1(), IMAGENET, 1_235_496, (1, 2), "flatten"),
    # from the papers (tests/e2e/zoo_models.py); paper's figure in the comment
    # paper: "60 million"
    "alexnet_lecture": Net(lambda: zoo.AlexNetLecture(), [3, 227, 227], 60_965_224,
                           (1, 2), "fc8"),
    # no figure for the lecture's variant (512/1024/512 filters)
    "zfnet": Net(lambda: zoo.ZFNet(), IMAGENET, 107_627_624, (1, 2), "fc8"),
    # paper / implementations: 42.7M
    "inception_v4": Net(lambda: zoo.InceptionV4(), [3, 299, 299], 42_679_816,
                        (1, 2), "last_linear"),
    # no figure for 18 layers in the paper
    "preact_resnet18": Net(lambda: zoo.PreActResNetImageNet((2, 2, 2, 2)), IMAGENET,
                           11_687_720, (1, 2), "fc"),
    # paper: 1.7M (CIFAR-10)
    "preact_resnet164": Net(lambda: zoo.PreActResNetCifar(18, (16, 32, 64), True), CIFAR,
                            1_703_258, (1, 2), "fc"),
    # paper: 36.5M (CIFAR-10)
    "wrn28_10": Net(lambda: zoo.PreActResNetCifar(4, (160, 320, 640), False), CIFAR,
                    36_479_194, (1, 2), "fc"),
    # paper: 1.7M (CIFAR-10 ResNet-110)
    "stochastic_depth": Net(lambda: zoo.StochasticDepthResNet(18, 0.5), CIFAR, 1_727_962,
                            (1, 2), "fc"),
    # paper: 38.6M (20 layers) / 22.9M (40 layers) with other widths; see the spec
    "fractalnet": Net(lambda: zoo.FractalNet(4, (64, 128, 256, 512, 512)), CIFAR,
                      76_106_634, (1, 2), "fc"),
    # paper: none; ~0.97M is the usual figure for this definition
    "nin": Net(lambda: zoo.NiN(), CIFAR, 966_986, (1, 2), "flatten"),
    # the mobile and efficient networks of issue 13 (counts: the table)
    "shufflenet_v2_x1_0": Net(lambda: TV.shufflenet_v2_x1_0(), IMAGENET, 2_278_604, (1, 2),
                              "fc"),
    "regnet_y_400mf": Net(lambda: TV.regnet_y_400mf(), IMAGENET, 4_344_144, (1, 2), "fc"),
    "regnet_x_1_6gf": Net(lambda: TV.regnet_x_1_6gf(), IMAGENET, 9_190_136, (1, 2), "fc"),
    "inception_v3": Net(lambda: TV.inception_v3(aux_logits=False, init_weights=True,
                                                transform_input=False),
                        [3, 299, 299], 23_834_568, (1, 2), "fc"),
    "convnext_tiny": Net(lambda: TV.convnext_tiny(), IMAGENET, 28_589_128, (1, 2),
                         "classifier.2"),
    # not a zoo network: one of each block of the mobile and efficient nets
    # (zoo_models.ModernBlocks); its spec is tests/e2e/modern_blocks.yaml
    "modern_blocks": Net(lambda: zoo.ModernBlocks(), [3, 64, 64], 292_350, (1, 2), "fc"),
    # the mobile and efficient networks (issue 13; counts: torchvision's
    # meta, REFERENCE.md); EfficientNet-B3 at the crop size of its weights
    "mobilenet_v2": Net(lambda: TV.mobilenet_v2(), IMAGENET, 3_504_872, (1, 2),
                        "classifier.1"),
    "mobilenet_v3_small": Net(lambda: TV.mobilenet_v3_small(), IMAGENET, 2_542_856, (1, 2),
                              "classifier.3"),
    "mobilenet_v3_large": Net(lambda: TV.mobilenet_v3_large(), IMAGENET, 5_483_032, (1, 2),
                              "classifier.3"),
    "efficientnet_b0": Net(lambda: TV.efficientnet_b0(), IMAGENET, 5_288_548, (1, 2),
                           "classifier.1"),
    "efficientnet_b3": Net(lambda: TV.efficientnet_b3(), [3, 300, 300], 12_233_232, (1, 2),
                           "classifier.1"),
    "mnasnet1_0": Net(lambda: TV.mnasnet1_0(), IMAGENET, 4_383_312, (1, 2), "classifier.1"),
    # not a zoo network: those blocks with channel counts that are not multiples
    # of 16 (zoo_models.PaddedBlocks; tests/e2e/padded_blocks.yaml), which
    # passes/pad_channels.c pads
    "padded_blocks": Net(lambda: zoo.PaddedBlocks(), [3, 128, 128], 325_994, (1, 2), "fc"),
    # not a zoo network: channel shuffles in every position passes/fold_shuffle.c
    # treats (zoo_models.ShuffleBlocks; tests/e2e/shuffle_blocks.yaml)
    "shuffle_blocks": Net(lambda: zoo.ShuffleBlocks(), [3, 32, 32], 26_346, (1, 2), "fc"),
}

# Networks whose activations are spread further than He-normal weights and
# unit BatchNorms spread them, so that every regime of every nonlinearity is
# reached (the upper bound of ReLU6, the three pieces of hardswish, the
# tails of sigmoid, SiLU and GELU beyond +-10): the standard deviation each
# activation's input is brought to (calibrate_activations). Checked:
# make_ref.py prints the share of each regime and fails when one is never
# reached.
SPREAD = {net: {"tails": 8.0, "kinks": 4.0}
          for net in ("modern_blocks", "padded_blocks", "mobilenet_v2", "mobilenet_v3_small",
                      "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b3",
                      "regnet_y_400mf",    # SE gates' sigmoids
                      "convnext_tiny")}    # CNBlocks' GELUs
# MNASNet has only ReLUs, but its linear bottlenecks and residual adds, with
# no normalisation at inference, grow its activations ~5x per stage (its
# output reached 1e6): centring each ReLU's input to unit spread keeps them
# O(1).
SPREAD["mnasnet1_0"] = {"relu": 1.0}
# Bumped whenever calibrate_activations changes: the data of the networks
# in SPREAD is redone (the others' is kept). 2: calibrated on the reference
# inputs themselves, centred, and pushed past the outer regimes' bounds.
CALIBRATION = 2


def calibration_tag(name):
    """What the manifest records of name's calibration (None: none)."""
    return {"version": CALIBRATION, **SPREAD[name]} if name in SPREAD else None


def build(name):
    """The model in eval mode with seeded, non-trivial weights."""
    torch.manual_seed(0)
    net = NETWORKS[name]
    model = net.ctor().eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=gen)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1, generator=gen)
            elif isinstance(m, torchvision.models.convnext.CNBlock):
                m.layer_scale.uniform_(0.5, 1.5, generator=gen)  # not 1e-6
        # Deep residual nets add up ~50 unit-variance branches: damp the last
        # layer of each residual branch (as zero-init-residual schemes do, but
        # not to zero) so that the output stays O(1) and every unit counts.
        for m in model.modules():
            if isinstance(m, torchvision.models.resnet.BasicBlock):
                m.bn2.weight.mul_(0.25)
            elif isinstance(m, torchvision.models.resnet.Bottleneck):
                m.bn3.weight.mul_(0.25)
            elif isinstance(m, torchvision.models.regnet.ResBottleneckBlock):
                m.f.c[1].weight.mul_(0.25)
            elif isinstance(m, zoo.PreActUnit):
                (m.conv3 if m.bottleneck else m.conv2).weight.mul_(0.25)
            elif isinstance(m, zoo.StochasticDepthUnit):
                m.bn2.weight.mul_(0.25)
        # last: the spread is measured on the network as it will run
        if name in SPREAD:
            x = torch.cat(list(reference_inputs(net).values()))
            calibrate_activations(model, x, SPREAD[name])
    return model, net


# The regimes of each activation module, as tests/unit/ref_ops.c names them:
# a function of the module and its input giving the regime of each element.
def activation_regimes(m):
    """(names, fn) for an activation module, or None."""
    nn = torch.nn
    tails = (["tail x < -10", "-10 <= x <= 10", "tail x > 10"],
             lambda x: (x >= -10).long() + (x > 10).long())
    if isinstance(m, (nn.Sigmoid, nn.SiLU, nn.GELU)):
        return tails
    if isinstance(m, nn.ReLU):
        return ["x < 0", "x >= 0"], lambda x: (x >= 0).long()
    if isinstance(m, nn.Hardtanh):  # ReLU6 too
        return (["x < min", "min <= x <= max", "x > max"],
                lambda x: (x >= m.min_val).long() + (x > m.max_val).long())
    if isinstance(m, (nn.Hardsigmoid, nn.Hardswish)):
        return (["x <= -3", "-3 < x < 3", "x >= 3"],
                lambda x: (x > -3).long() + (x >= 3).long())
    if isinstance(m, zoo.HardSigmoidAB):
        return (["ax+b <= 0", "ax+b", "ax+b >= 1"],
                lambda x: ((m.alpha * x + m.beta) > 0).long() + ((m.alpha * x + m.beta) >= 1).long())
    return None


def feeders(model):
    """{activation module: the module whose output is its input}: its
    predecessor in an nn.Sequential, or by name in the blocks that call
    their activations from forward()."""
    nn, feed = torch.nn, {}
    for m in model.modules():
        if isinstance(m, nn.Sequential):
            for prev, cur in zip(list(m)[:-1], list(m)[1:]):
                feed[cur] = prev
        if isinstance(m, torchvision.ops.SqueezeExcitation):
            feed[m.activation], feed[m.scale_activation] = m.fc1, m.fc2
        if isinstance(m, zoo.Extras):
            feed[m.gelu], feed[m.hsig], feed[m.sigmoid] = m.conv, m.conv2, m.gate
    return feed


def regime_bounds(m):
    """(kind, lo, hi) for an activation module that calibrate_activations
    spreads: the targets key of its kind, and the inputs below lo and above
    hi that reach its outer regimes (tails, clamp bounds, the kinks of the
    hard functions; (0, 0) for ReLU: centring it is enough); None for other
    modules."""
    nn = torch.nn
    if isinstance(m, (nn.Sigmoid, nn.SiLU, nn.GELU)):
        return "tails", -10.0, 10.0
    if isinstance(m, zoo.HardSigmoidAB):
        return "tails", -m.beta / m.alpha, (1.0 - m.beta) / m.alpha
    if isinstance(m, nn.ReLU6):
        return "kinks", 0.0, 6.0
    if isinstance(m, (nn.Hardswish, nn.Hardsigmoid)):
        return "kinks", -3.0, 3.0
    if isinstance(m, nn.ReLU):
        return "relu", 0.0, 0.0
    return None


def calibrate_activations(model, x, targets):
    """Rescales, in one forward pass on x (the reference inputs), the
    BatchNorm, conv or linear layer that feeds each activation, so that the
    activation's input is centred and of the standard deviation of its kind
    (targets["tails"] for sigmoid, SiLU, GELU and ONNX's hardsigmoid,
    targets["kinks"] for ReLU6, hardswish and hardsigmoid, targets["relu"],
    when given, for ReLU; an activation whose kind has no target is left
    as it is), and further if need be so that its smallest and largest
    values go 25% beyond the bounds of the outer regimes (regime_bounds): a
    squeeze-excitation gate has a few values per sample, whose spread alone
    says little. A layer
    y = w x + b becomes k (y - mean): weight k w, bias k (b - mean); the
    hook passes the rescaled tensor on, so the activations after it see
    what the rescaled model computes. Each activation's input is then of
    that size whatever came before, so magnitudes do not compound through
    the network as a uniform scaling would (that made PyTorch's own float32
    output differ from float64 by 1e-4)."""
    nn = torch.nn
    feed = feeders(model)
    handles = {}

    def hook(m, inp, f, target, lo, hi):
        handles[m].remove()  # once, should a module be called twice
        y = inp[0]
        mean = float(y.mean()) if f.bias is not None else 0.0
        y = y - mean
        k = target / max(float(y.std()), 1e-30)
        if lo < 0 and float(y.min()) < 0:
            k = max(k, 1.25 * -lo / -float(y.min()))
        if hi > 0 and float(y.max()) > 0:
            k = max(k, 1.25 * hi / float(y.max()))
        f.weight.mul_(k)
        if f.bias is not None:
            f.bias.sub_(mean).mul_(k)
        return (y * k,) + tuple(inp[1:])

    for m in model.modules():
        bounds = regime_bounds(m)
        f = feed.get(m)
        if bounds is None or bounds[0] not in targets or not isinstance(
                f, (nn.BatchNorm2d, nn.LayerNorm, nn.Conv2d, nn.Linear)):
            continue
        handles[m] = m.register_forward_pre_hook(
            lambda mod, inp, f=f, t=targets[bounds[0]], b=bounds[1:]: hook(mod, inp, f, t, *b))
    model(x)
    for h in handles.values():
        h.remove()


def count_regimes(model):
    """Hooks that count, for every activation module, how many of its inputs
    fall in each regime; returns (counts, remove)."""
    counts, handles = {}, []
    for name, m in model.named_modules():
        r = activation_regimes(m)
        if r is None:
            continue
        names, fn = r
        counts[name] = (type(m).__name__, names, [0] * len(names))

        def hook(mod, inputs, name=name, fn=fn):
            regime = fn(inputs[0])
            for i in range(len(counts[name][2])):
                counts[name][2][i] += int((regime == i).sum())
        handles.append(m.register_forward_pre_hook(hook))
    return counts, lambda: [h.remove() for h in handles]


def report_regimes(network, counts):
    """Prints the share of each regime of each activation; False if one was
    never reached (the test would then not check that piece)."""
    ok = True
    for name, (kind, names, c) in counts.items():
        total = max(1, sum(c))
        shares = ", ".join(f"{n} {100.0 * k / total:.1f}%" for n, k in zip(names, c))
        print(f"{network}: regimes of {kind} {name}: {shares}")
        for n, k in zip(names, c):
            if k == 0:
                print(f"{network}: {kind} {name}: regime '{n}' never reached; "
                      "spread the activations further (SPREAD)", file=sys.stderr)
                ok = False
    return ok


def make_input(batch, shape):
    """A seeded input: a smooth random field (4x4 bilinearly upsampled) plus
    white noise. Pure white noise averages out in global pooling, leaving
    outputs nearly independent of the input; the smooth part makes samples
    differ by 10-20% of the output's range, so a wrong kernel shows."""
    if len(shape) != 3:
        return torch.randn(batch, *shape)
    low = 2.0 * torch.randn(batch, shape[0], 4, 4)
    smooth = torch.nn.functional.interpolate(low, size=shape[1:], mode="bilinear",
                                             align_corners=False)
    return smooth + 0.5 * torch.randn(batch, *shape)


def reference_inputs(net):
    """{batch: input} for each of the network's batch sizes: the inputs the
    reference outputs are computed for (seeded; the same on every call)."""
    torch.manual_seed(1234)
    return {batch: make_input(batch, net.shape) for batch in net.batches}


def write_safetensors(path, state):
    """state: ordered name -> float32 tensor. Writes the file atomically."""
    header, offset, blobs = {}, 0, []
    for name, t in state.items():
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = temp_name(path)
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def temp_name(path):
    """A private temporary name beside path: concurrent runs (two tests
    generating missing data at once) never write the same file."""
    return f"{path}.{os.getpid()}.tmp"


def write_f32(path, t):
    tmp = temp_name(path)
    with open(tmp, "wb") as f:
        f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())
    os.replace(tmp, path)


def up_to_date(manifest_path, name):
    """True when manifest_path exists and was written by this version of the
    script for name's current batch sizes and calibration (older manifests
    lack output_name)."""
    try:
        with open(manifest_path) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return False
    return (m.get("ref_version") == REF_VERSION and
            m.get("output_name") == NETWORKS[name].output and
            m.get("calibration") == calibration_tag(name) and
            sorted(c["batch"] for c in m.get("cases", [])) == sorted(NETWORKS[name].batches))


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(NETWORKS))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("network", choices=sorted(NETWORKS))
    ap.add_argument("outdir")
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    args = ap.parse_args()

    manifest_path = os.path.join(args.outdir, "manifest.json")
    if up_to_date(manifest_path, args.network) and not args.force:
        print(f"{args.network}: reference data present in {args.outdir}")
        return 0
    os.makedirs(args.outdir, exist_ok=True)
    load_torch()
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    model, net = build(args.network)
    shape, expected = net.shape, net.params
    nparams = sum(p.numel() for p in model.parameters())
    print(f"{args.network}: {nparams:,} parameters (expected: {expected:,})")
    if nparams != expected:
        print(f"{args.network}: parameter count mismatch", file=sys.stderr)
        return 1

    state = {k: v for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    write_safetensors(os.path.join(args.outdir, "weights.safetensors"), state)

    cases = []
    counts, unhook = count_regimes(model)
    with torch.no_grad():
        for batch, x in reference_inputs(net).items():
            y = model(x)
            write_f32(os.path.join(args.outdir, f"input_b{batch}.bin"), x)
            write_f32(os.path.join(args.outdir, f"output_b{batch}.bin"), y)
            cases.append({"batch": batch, "input": f"input_b{batch}.bin",
                          "output": f"output_b{batch}.bin",
                          "max_abs_output": float(y.abs().max())})
            spread = float((y - y[:1]).abs().max() / y.abs().max())
            print(f"{args.network}: batch {batch}: output {list(y.shape)}, "
                  f"max|y| = {float(y.abs().max()):.6g}, "
                  f"max|y - y[0]| / max|y| = {spread:.3g}")

    unhook()
    if not report_regimes(args.network, counts):
        return 1

    manifest = {
        "network": args.network,
        "ref_version": REF_VERSION,
        "num_params": nparams,
        "num_tensors": len(state),
        "weights": "weights.safetensors",
        "input_name": "image",
        "output_name": net.output,
        "calibration": calibration_tag(args.network),
        "input_shape": shape,
        "output_shape": list(y.shape[1:]),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cases": cases,
    }
    tmp = temp_name(manifest_path)
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, manifest_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
