#!/usr/bin/python3
"""make_awkward.py OUT.onnx: a small ONNX model whose tensor names are not C
identifiers, for the typed-header test (tests/header/run.sh).

    inputs   "input.1" [N, 3, 8, 8], "class" [N, 4]
    outputs  "/fc/Gemm" [N, 10]  (conv, relu, flatten, linear of "input.1")
             "fc.gemm"  [N, 6]   (linear of "class")
             "191"      [N, 4, 8, 8] (the relu; torch numbers the values it
                         names itself, and refuses a number as a given
                         name, so the model is renamed with onnx after)

cnncc's header names them input_1, class_, fc_Gemm, fc_gemm_2 (fc_gemm
equals fc_Gemm but for case) and t_191. Weights are seeded.
"""
import sys

import onnx
import torch


class Awkward(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 10)
        self.side = torch.nn.Linear(4, 6)

    def forward(self, x, c):
        r = torch.relu(self.conv(x))
        return self.fc(torch.flatten(r, 1)), self.side(c), r


def main():
    torch.manual_seed(7)
    m = Awkward().eval()
    with torch.no_grad():
        torch.onnx.export(m, (torch.zeros(1, 3, 8, 8), torch.zeros(1, 4)), sys.argv[1],
                          opset_version=13, input_names=["input.1", "class"],
                          output_names=["/fc/Gemm", "fc.gemm"],
                          dynamic_axes={"input.1": {0: "n"}, "class": {0: "n"}})
    model = onnx.load(sys.argv[1])
    old = model.graph.output[2].name
    for node in model.graph.node:
        for k, name in enumerate(node.output):
            if name == old:
                node.output[k] = "191"
        for k, name in enumerate(node.input):
            if name == old:
                node.input[k] = "191"
    model.graph.output[2].name = "191"
    onnx.checker.check_model(model)
    onnx.save(model, sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
