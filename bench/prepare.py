#!/usr/bin/python3
"""Same weights and input for every engine of the benchmark.

    /usr/bin/python3 bench/prepare.py NETWORK OUTDIR [--force] [--no-onnx]

Builds the PyTorch model of NETWORK with the seeded random weights of
tests/e2e/make_ref.py (its build(): He-normal conv/linear weights, non-trivial
BatchNorm statistics), and writes into OUTDIR:

    weights.safetensors  the state_dict (torchvision names, as the cnncc specs
                         use them), for `cnncc --weights` and torch_bench.py
    model.onnx           torch.onnx.export of the same model, for ORT
    input.bin            a seeded batch-1 input (make_ref.make_input), raw float32
    output.bin           PyTorch's eager output for it (to check the engines)
    manifest.json        network, shapes, versions; written last

The model comes from make_ref.NETWORKS when it is there (the torchvision
models and the modules of tests/e2e/zoo_models.py, inception_v4 among them),
else from torchvision.models (3x224x224 input); make_ref's functions are
imported, not copied, and make_ref.py is not modified (only its NETWORKS dict
may be extended in this process). A network with neither has no peer: the
script exits with status 3.

Nothing is redone when manifest.json is present, unless --force is given.
"""

import argparse
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "tests", "e2e")
sys.path.insert(0, E2E)

import torch  # noqa: E402
import torchvision  # noqa: E402

import make_ref  # noqa: E402

# make_ref.py may import torch lazily (load_torch()); its functions need it.
if hasattr(make_ref, "load_torch"):
    make_ref.load_torch()

NO_MODEL = 3  # exit status: no PyTorch model for this network

# torchvision models the e2e tests may not cover (yet), all 3x224x224.
TORCHVISION_EXTRA = ("densenet121", "squeezenet1_0", "resnext50_32x4d", "resnet152",
                     "resnet18", "resnet34", "resnet101", "mobilenet_v2", "efficientnet_b0",
                     "mobilenet_v3_large", "shufflenet_v2_x1_0", "regnet_y_400mf",
                     "convnext_tiny")


def register(name):
    """Makes make_ref.build(name) work; False if there is no such model."""
    if name in make_ref.NETWORKS:
        return True
    if name not in TORCHVISION_EXTRA or not hasattr(torchvision.models, name):
        return False
    ctor = getattr(torchvision.models, name)
    # make_ref's entries are (ctor, shape, ...) tuples or namedtuples; copy
    # the form of an existing one (build() reads only the constructor).
    proto = next(iter(make_ref.NETWORKS.values()), None)
    if proto is not None and hasattr(proto, "_replace"):
        entry = proto._replace(**{proto._fields[0]: lambda: ctor(),
                                  proto._fields[1]: [3, 224, 224]})
    else:
        entry = (lambda: ctor(), [3, 224, 224], None)
    make_ref.NETWORKS[name] = entry
    return True


def build(name):
    """(model in eval mode with make_ref's seeded weights, per-sample input shape)."""
    if not register(name):
        raise KeyError(name)
    shape = list(make_ref.NETWORKS[name][1])
    model = make_ref.build(name)[0]
    return model.eval(), shape


def read_safetensors(path):
    """name -> float32 tensor (the inverse of make_ref.write_safetensors)."""
    import numpy as np
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            raise ValueError(f"{path}: {name}: dtype {meta['dtype']} (only F32 is read)")
        a, b = meta["data_offsets"]
        arr = np.frombuffer(data, dtype="<f4", count=(b - a) // 4, offset=a)
        out[name] = torch.from_numpy(arr.copy()).reshape(meta["shape"])
    return out


# How model.onnx is exported: opset 13 with a dynamic batch axis, so ORT runs
# any batch and cnncc's ONNX frontend gets the form issue 12 names. A cached
# export made otherwise is redone.
ONNX_EXPORT = {"opset": 13, "dynamic_batch": True}


def load_model(name, weights_path):
    """The model of `name` with the weights of weights.safetensors."""
    model, shape = build(name)
    state = read_safetensors(weights_path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{weights_path}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval(), shape


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("network")
    ap.add_argument("outdir")
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    ap.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    args = ap.parse_args()

    manifest_path = os.path.join(args.outdir, "manifest.json")
    if os.path.exists(manifest_path) and not args.force:
        with open(manifest_path) as f:
            m = json.load(f)
        if (m.get("onnx") and m.get("onnx_export") == ONNX_EXPORT) or args.no_onnx:
            print(f"{args.network}: prepared data present in {args.outdir}")
            return 0
    if not register(args.network):
        print(f"{args.network}: no PyTorch model (not in make_ref.NETWORKS nor torchvision "
              f"{torchvision.__version__})", file=sys.stderr)
        return NO_MODEL
    os.makedirs(args.outdir, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    t0 = time.time()
    model, shape = build(args.network)
    state = {k: v for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    make_ref.write_safetensors(os.path.join(args.outdir, "weights.safetensors"), state)

    torch.manual_seed(1234)
    x = make_ref.make_input(1, shape)
    with torch.no_grad():
        y = model(x)
    make_ref.write_f32(os.path.join(args.outdir, "input.bin"), x)
    make_ref.write_f32(os.path.join(args.outdir, "output.bin"), y)

    onnx = None
    if not args.no_onnx:
        onnx = "model.onnx"
        path = os.path.join(args.outdir, onnx)
        tmp = make_ref.temp_name(path)
        with torch.no_grad():
            torch.onnx.export(model, x, tmp, input_names=["image"], output_names=["output"],
                              opset_version=ONNX_EXPORT["opset"], do_constant_folding=True,
                              dynamic_axes={"image": {0: "batch"}, "output": {0: "batch"}})
        os.replace(tmp, path)

    manifest = {
        "network": args.network,
        "num_params": sum(p.numel() for p in model.parameters()),
        "input_shape": shape,
        "output_shape": list(y.shape[1:]),
        "weights": "weights.safetensors",
        "onnx": onnx,
        "onnx_export": ONNX_EXPORT if onnx else None,
        "input": "input.bin",
        "output": "output.bin",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
    tmp = make_ref.temp_name(manifest_path)
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, manifest_path)
    print(f"{args.network}: prepared in {args.outdir} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
