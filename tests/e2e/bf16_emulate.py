#!/usr/bin/env python3
"""bf16_emulate.py: what bf16 weights cost in PyTorch itself (docs/precision.md).

    /usr/bin/python3 tests/e2e/bf16_emulate.py NET [NET ...]

For each network of make_ref.py, builds the same seeded model and input as
the e2e reference data (batch 1), runs it in fp32, rounds every Conv2d and
Linear weight to bfloat16 (weight.to(torch.bfloat16).float(): round to
nearest even) and runs it again, and prints max|y_bf16 - y| / max|y|: an
estimate of --precision=bf16's error that does not involve cnncc (the
weights are rounded before batch-norm folding, cnncc rounds after it).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_ref  # noqa: E402


def main():
    make_ref.load_torch()
    torch = make_ref.torch
    for name in sys.argv[1:]:
        model, net = make_ref.build(name)
        torch.manual_seed(1234)  # as make_ref.main before its inputs
        x = make_ref.make_input(net.batches[0], net.shape)
        with torch.no_grad():
            y = model(x)
            for m in model.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                    m.weight.copy_(m.weight.to(torch.bfloat16).to(torch.float32))
            yb = model(x)
        ratio = float((yb - y).abs().max() / y.abs().max())
        print(f"{name}: PyTorch with bf16-rounded conv/linear weights vs fp32: ratio {ratio:.4g}")


if __name__ == "__main__":
    main()
