"""cnncc.from_torch: a PyTorch module to a .so in one call, through
torch.onnx.export and cnncc's ONNX frontend (docs/onnx.md)."""
import os
import tempfile

from ._compile import compile as _compile

__all__ = ["from_torch"]


def _names(given, n, stem):
    if given is not None:
        given = [given] if isinstance(given, str) else list(given)
        if len(given) != n:
            raise ValueError(f"{len(given)} {stem} names for {n} {stem}s")
        return given
    return [stem] if n == 1 else [f"{stem}{i}" for i in range(n)]


def from_torch(module, example_input, out, opset=13, input_names=None, output_names=None,
               dynamic_batch=True, onnx_path=None, cnncc=None, **flags):
    """Exports module with torch.onnx.export (in eval mode, the batch axis
    dynamic unless dynamic_batch=False) and compiles the ONNX model into
    out with cnncc.compile; returns out.

        net = torchvision.models.resnet18()
        cnncc.from_torch(net, torch.zeros(1, 3, 224, 224), "resnet18.so")
        y = cnncc.load("resnet18.so")(x)

    example_input: a tensor, or a tuple of tensors for a module with
    several inputs (float32, [N, C, H, W] or [N, F]). The inputs and
    outputs are named "input"/"output" (or input0, input1, ... when there
    are several) unless input_names/output_names are given: those names are
    the ones cnn_info and Model.run use. onnx_path: keep the exported model
    there (default: a temporary file, removed). opset: 1 to 17 (cnncc's
    range). Any other keyword is a cnncc option (see cnncc.compile).
    A model with ops cnncc does not read raises UnsupportedOpsError naming
    them (.ops); other failures raise CompileError with cnncc's messages."""
    import torch

    args = example_input if isinstance(example_input, tuple) else (example_input,)
    training = module.training
    module.eval()  # counting the outputs must not move BatchNorm's statistics
    try:
        with torch.no_grad():
            outs = module(*args)
    finally:
        module.train(training)
    n_out = len(outs) if isinstance(outs, (tuple, list)) else 1
    ins = _names(input_names, len(args), "input")
    outn = _names(output_names, n_out, "output")
    axes = {name: {0: "batch"} for name in ins + outn} if dynamic_batch else None
    tmpdir = None
    if onnx_path is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="cnncc-onnx-")
        base = os.path.splitext(os.path.basename(os.fspath(out)))[0] or "net"
        onnx_path = os.path.join(tmpdir.name, base + ".onnx")
    try:
        with torch.no_grad():
            torch.onnx.export(module, args, onnx_path, opset_version=opset, input_names=ins,
                              output_names=outn, dynamic_axes=axes,
                              training=torch.onnx.TrainingMode.EVAL, do_constant_folding=True)
        return _compile(onnx_path, out, cnncc=cnncc, **flags)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
