#!/usr/bin/python3
"""export_onnx.py: a torchvision model to ONNX, ready for cnncc.

    /usr/bin/python3 examples/export_onnx.py MODEL OUT.onnx [--opset 13] [--static]
                                             [--weights state_dict.pt]

MODEL is a torchvision.models name (resnet18, mobilenet_v2, ...). Without
--weights the model keeps torchvision's random initialization (this
machine has no internet for pretrained downloads); --weights loads a
state_dict saved with torch.save. The export has a dynamic batch axis
unless --static, opset 13 by default (cnncc reads 1 to 17), an input named
"image" and an output named "logits". Then:

    cnncc OUT.onnx -o model.so
"""
import argparse
import sys

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--static", action="store_true", help="no dynamic batch axis")
    ap.add_argument("--weights", help="a state_dict saved with torch.save")
    ap.add_argument("--size", type=int, default=None, help="input height and width")
    a = ap.parse_args()
    ctor = getattr(torchvision.models, a.model, None)
    if ctor is None or not callable(ctor):
        print(f"export_onnx.py: no torchvision model '{a.model}'", file=sys.stderr)
        return 1
    kw = {"aux_logits": False, "init_weights": True} if a.model in ("googlenet", "inception_v3") else {}
    model = ctor(**kw).eval()
    if a.weights:
        model.load_state_dict(torch.load(a.weights, map_location="cpu"))
    size = a.size or (299 if a.model == "inception_v3" else 224)
    axes = None if a.static else {"image": {0: "batch"}, "logits": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros(1, 3, size, size), a.out, opset_version=a.opset,
                          input_names=["image"], output_names=["logits"], dynamic_axes=axes)
    print(f"export_onnx.py: {a.model} -> {a.out} (opset {a.opset}, "
          f"{'static' if a.static else 'dynamic'} batch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
