#!/usr/bin/python3
"""Reference data for cnncc's end-to-end tests, computed with PyTorch.

    /usr/bin/python3 tests/e2e/make_ref.py NETWORK OUTDIR [--force]

NETWORK is one of the zoo specs mirrored here (lenet5, alexnet, vgg16,
resnet50, googlenet). The script builds the torchvision model (or the LeNet-5
module of lenet5.py) in eval mode with seeded random weights, makes every
BatchNorm non-trivial (running_mean ~ N(0, 0.1), running_var ~ U(0.5, 1.5),
weight ~ U(0.5, 1.5), bias ~ N(0, 0.1)), draws every conv/linear weight
He-normal (std sqrt(2/fan_in), so the signal neither vanishes nor explodes
and the output really depends on the input: torchvision's GoogLeNet init,
std 0.01, would leave little but the classifier's bias) and every bias
U(-0.1, 0.1), then writes into OUTDIR:

    weights.safetensors    the state_dict, float32, num_batches_tracked dropped
    input_b1.bin           seeded input for batch 1 (raw LE float32; see make_input)
    output_b1.bin          PyTorch's output for it
    input_b3.bin, output_b3.bin   the same for batch 3
    manifest.json          network, parameter count, shapes, file names

Every file is written under a private temporary name and renamed into
place, and manifest.json last, so its presence means the directory is
complete (even if two runs race); the script then does nothing unless --force is given. The
parameter count (model.parameters(), as cnn_info.num_params counts) is
printed and checked against REFERENCE.md.

No internet and no pretrained downloads are needed; safetensors is written
by hand (there is no safetensors package): an 8-byte little-endian header
length, the JSON header padded with spaces to a multiple of 8, the data.
"""

import argparse
import json
import os
import struct
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lenet5 import LeNet5  # noqa: E402

# name -> (constructor, per-sample input shape, parameter count per REFERENCE.md)
NETWORKS = {
    "lenet5": (lambda: LeNet5(), [1, 32, 32], 61_706),
    "alexnet": (lambda: torchvision.models.alexnet(), [3, 224, 224], 61_100_840),
    "vgg16": (lambda: torchvision.models.vgg16(), [3, 224, 224], 138_357_544),
    "resnet50": (lambda: torchvision.models.resnet50(), [3, 224, 224], 25_557_032),
    "googlenet": (
        lambda: torchvision.models.googlenet(
            aux_logits=False, transform_input=False, init_weights=True),
        [3, 224, 224], 6_624_904),
}

BATCHES = (1, 3)


def build(name):
    """The model in eval mode with seeded, non-trivial weights."""
    torch.manual_seed(0)
    ctor, shape, expected = NETWORKS[name]
    model = ctor().eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=gen)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1, generator=gen)
    return model, shape, expected


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("network", choices=sorted(NETWORKS))
    ap.add_argument("outdir")
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    args = ap.parse_args()

    manifest_path = os.path.join(args.outdir, "manifest.json")
    if os.path.exists(manifest_path) and not args.force:
        print(f"{args.network}: reference data present in {args.outdir}")
        return 0
    os.makedirs(args.outdir, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    model, shape, expected = build(args.network)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"{args.network}: {nparams:,} parameters (REFERENCE.md: {expected:,})")
    if nparams != expected:
        print(f"{args.network}: parameter count mismatch", file=sys.stderr)
        return 1

    state = {k: v for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    write_safetensors(os.path.join(args.outdir, "weights.safetensors"), state)

    cases = []
    torch.manual_seed(1234)
    with torch.no_grad():
        for batch in BATCHES:
            x = make_input(batch, shape)
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

    manifest = {
        "network": args.network,
        "num_params": nparams,
        "num_tensors": len(state),
        "weights": "weights.safetensors",
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
