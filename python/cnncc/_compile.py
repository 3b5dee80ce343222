"""cnncc.compile: runs the cnncc compiler, and finds it.

The compiler is looked for, in order: the `cnncc=` argument; $CNNCC (a path
to the executable); the one this package was installed or configured with
(_where.py, written by CMake: PREFIX/bin/cnncc for an installed package,
BUILD/cnncc for the build tree's build/python); the build/cnncc of the
source tree this package sits in (python/cnncc); `cnncc` on $PATH.
"""
import os
import re
import shutil
import subprocess
import warnings

__all__ = ["compile", "find_cnncc", "CompileError", "UnsupportedOpsError", "CompileWarning"]


class CompileError(RuntimeError):
    """cnncc failed: .returncode (1: an error in the input or flags, 2: an
    internal error), .stderr (its diagnostics), .command (the argv run)."""

    def __init__(self, message, returncode, stderr, command):
        super().__init__(message)
        self.returncode, self.stderr, self.command = returncode, stderr, command


class UnsupportedOpsError(CompileError):
    """An ONNX model uses ops cnncc does not read: .ops, their names."""

    def __init__(self, message, returncode, stderr, command, ops):
        super().__init__(message, returncode, stderr, command)
        self.ops = ops


class CompileWarning(UserWarning):
    """A warning cnncc printed while compiling successfully."""


def find_cnncc(cnncc=None):
    """The path of the cnncc executable (see the module's docstring for the
    order); FileNotFoundError naming the places tried if there is none."""
    if cnncc is not None:  # given: that one or none
        if os.path.isfile(cnncc) and os.access(cnncc, os.X_OK):
            return os.path.realpath(cnncc)
        raise FileNotFoundError(f"cnncc={cnncc!r} is not an executable file")
    tried = []
    cands = [os.environ.get("CNNCC")]
    try:
        from . import _where
        cands.append(_where.cnncc_path())
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    cands.append(os.path.join(here, "..", "..", "build", "cnncc"))
    cands.append(shutil.which("cnncc"))
    for c in cands:
        if not c:
            continue
        tried.append(c)
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.realpath(c)
    raise FileNotFoundError("cannot find the cnncc executable (tried: " + ", ".join(tried) +
                            "); pass cnncc=PATH or set $CNNCC")


def _flag_args(flags):
    """Keyword arguments as cnncc options, always in the --name=value form
    (--emit=header has no other): target_cpu="x86-64-v3" is
    --target-cpu=x86-64-v3; True is the bare flag (external_weights=True:
    --external-weights); False and None leave it out; winograd=True/False is
    --winograd=on/off; a list repeats the flag; tune={"conv.tile": 8} is
    --tune conv.tile=8; input_shape={"image": (3, 224, 224)} is
    --input-shape image=3x224x224."""
    args = []
    for key, v in flags.items():
        opt = "--" + key.replace("_", "-")
        if v is None or (v is False and key != "winograd"):
            continue
        if key == "winograd":
            args.append(f"--winograd={'on' if v else 'off'}")
        elif key == "tune":
            for k, x in dict(v).items():
                args.append(f"--tune={k}={x}")
        elif key == "input_shape":
            for name, shape in dict(v).items():
                dims = [shape] if isinstance(shape, int) else list(shape)
                args.append(f"--input-shape={name}=" + "x".join(str(int(d)) for d in dims))
        elif v is True:
            args.append(opt)
        elif isinstance(v, (list, tuple)):
            for x in v:
                args.append(f"{opt}={x}")
        else:
            args.append(f"{opt}={os.fspath(v) if isinstance(v, os.PathLike) else v}")
    return args


_UNSUPPORTED = re.compile(r"op (\S+) \(opset \d+\) is not supported")
_SUMMARY = re.compile(r"(\d+) nodes? of (\d+) uses? ops cnncc does not read")


def compile(src, out, weights=None, opt=2, cnncc=None, **flags):
    """Compiles src (a spec .yaml or an ONNX model) into out (a .so unless
    emit= says otherwise) with cnncc, and returns out.

        cnncc.compile("examples/googlenet.yaml", "g.so", weights="g.safetensors", opt=3)
        cnncc.compile("net.onnx", "net.so", header="net.h", target_cpu="x86-64-v3")

    weights: a safetensors file (specs only); opt: 0 to 3 (-O0..-O3); any
    other cnncc option as a keyword (see _flag_args: emit="header",
    header="net.h", external_weights=True, winograd=False, seed=1,
    tune={...}, input_shape={...}, passes="fuse-bn"). cnncc runs with -q;
    a warning it prints becomes a CompileWarning. On failure raises
    CompileError with cnncc's diagnostics (UnsupportedOpsError, with .ops,
    when an ONNX model uses ops cnncc does not read)."""
    exe = find_cnncc(cnncc)
    if opt not in (0, 1, 2, 3):
        raise ValueError(f"opt must be 0, 1, 2 or 3, got {opt!r}")
    cmd = [exe, os.fspath(src), "-o", os.fspath(out), f"-O{opt}", "-q"]
    if weights is not None:
        cmd += ["--weights", os.fspath(weights)]
    cmd += _flag_args(flags)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        ops = []
        for op in _UNSUPPORTED.findall(r.stderr):
            if op not in ops:
                ops.append(op)
        if ops:
            m = _SUMMARY.search(r.stderr)
            count = f" ({m.group(1)} nodes of {m.group(2)})" if m else ""
            raise UnsupportedOpsError(
                f"cnncc cannot compile {src}: it uses ops cnncc does not read: "
                f"{', '.join(ops)}{count}; docs/onnx.md lists the supported ops\n{r.stderr}",
                r.returncode, r.stderr, cmd, ops)
        kind = "internal error" if r.returncode == 2 else "error"
        raise CompileError(f"cnncc failed on {src} ({kind}, exit {r.returncode}):\n{r.stderr}",
                           r.returncode, r.stderr, cmd)
    for line in r.stderr.splitlines():
        if "warning:" in line:
            warnings.warn(line, CompileWarning, stacklevel=2)
    return out
