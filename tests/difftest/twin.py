"""twin.py: a generated network's twin (net.json, tests/difftest/gen.h) as a
PyTorch computation, in float64.

The twin is written from docs/spec.md, not from cnncc's code: every op is
PyTorch's (torch.nn.functional), with the defaults the spec language
documents filled in here. Parameters are made when a layer first runs,
from the layer's attributes and its input's shape (conv2d: weight
[out, in/groups, kh, kw], ...), named as the spec names them
(`NAME.weight`, `NAME.running_var`, a `parameter` layer by its own name);
their values depend only on the seed and the parameter's name, so a
reduced network keeps the values of the layers it keeps. Values are
float32 numbers (what cnncc reads from the safetensors file) computed on
in float64, so the reference carries no rounding of its own beyond
float64's.

    twin = Twin(net, seed)
    outs = twin.run({"x": array}, batch)       # {output name: float64 array}
    twin.params                                # {name: float32 array}

Pooling is written out (explicit padding, then windows without padding) so
that asymmetric padding and ceil_mode follow one definition, PyTorch's:
a window starts at i*stride - pad_begin; with ceil_mode the last one must
start inside the input or the leading padding; avgpool divides by the
window's elements inside input + padding (count_include_pad) or inside the
input only.
"""
import math
import zlib

import numpy as np
import torch
import torch.nn.functional as F


def _pad4(p):
    """pad as written (int, [h, w], [t, l, b, r], or None) -> [t, l, b, r]"""
    if p is None:
        return [0, 0, 0, 0]
    if isinstance(p, int):
        return [p, p, p, p]
    if len(p) == 2:
        return [p[0], p[1], p[0], p[1]]
    return list(p)


def _pair(v, default):
    if v is None:
        return [default, default] if not isinstance(default, list) else list(default)
    if isinstance(v, int):
        return [v, v]
    return list(v)


def _window_out(n, k, s, p0, p1, d, ceil):
    span = n + p0 + p1 - d * (k - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + p0:
        out -= 1
    return out


class Twin:
    def __init__(self, net, seed):
        self.net = net
        self.seed = seed
        self.params = {}  # name -> float32 numpy array, in creation order
        # a reduced network's layers keep their values: parameter name ->
        # the name it had in the generated network
        self.orig = {}
        for n in net["nodes"]:
            if "orig" in n:
                for suffix in ("", ".weight", ".bias", ".running_mean", ".running_var"):
                    self.orig[n["name"] + suffix] = n["orig"] + suffix

    # ------------------------------------------------------------ parameters
    def _rng(self, name):
        h = zlib.crc32(name.encode()) ^ (self.seed * 0x9E3779B1 & 0xFFFFFFFF)
        return np.random.default_rng([h, self.seed & 0xFFFFFFFF])

    def param(self, name, shape, kind, fan_in=1):
        if name not in self.params:
            r = self._rng(self.orig.get(name, name))
            shape = tuple(int(s) for s in shape)
            if kind == "weight":  # He-uniform: activations keep their scale
                b = math.sqrt(6.0 / max(fan_in, 1))
                v = r.uniform(-b, b, shape)
            elif kind == "bias":
                v = r.uniform(-0.5, 0.5, shape)
            elif kind == "gamma":
                v = r.uniform(0.5, 1.5, shape) * np.where(r.uniform(size=shape) < 0.15, -1, 1)
            elif kind == "mean":
                v = r.uniform(-0.5, 0.5, shape)
            elif kind == "var":
                v = r.uniform(0.25, 2.0, shape)
            else:  # a parameter layer
                v = r.uniform(-1.5, 1.5, shape)
            self.params[name] = v.astype(np.float32)
        p = self.params[name]
        if p.shape != tuple(int(s) for s in shape):
            raise ValueError(f"parameter {name}: shape {p.shape}, wanted {tuple(shape)}")
        return torch.from_numpy(p.astype(np.float64))

    # ------------------------------------------------------------ ops
    def _conv(self, n, x, a, pointwise=False):
        name = n["name"]
        cin = x.shape[1]
        out = a["out"]
        bias = a.get("bias", True)
        if pointwise:
            w = self.param(name + ".weight", [out, cin], "weight", cin)
            b = self.param(name + ".bias", [out], "bias") if bias else None
            return F.linear(x.permute(0, 2, 3, 1), w, b).permute(0, 3, 1, 2)
        k = _pair(a["kernel"], 1)
        s = _pair(a.get("stride"), 1)
        d = _pair(a.get("dilation"), 1)
        g = a.get("groups", 1)
        t, l, bt, r = _pad4(a.get("pad"))
        w = self.param(name + ".weight", [out, cin // g, k[0], k[1]], "weight",
                       cin // g * k[0] * k[1])
        b = self.param(name + ".bias", [out], "bias") if bias else None
        x = F.pad(x, (l, r, t, bt))
        return F.conv2d(x, w, b, stride=s, dilation=d, groups=g)

    def _pool(self, x, a, op):
        k = _pair(a["kernel"], 1)
        s = _pair(a.get("stride"), k)
        d = _pair(a.get("dilation"), 1) if op == "maxpool" else [1, 1]
        t, l, b, r = _pad4(a.get("pad"))
        ceil = a.get("ceil_mode", False)
        H, W = x.shape[2], x.shape[3]
        oh = _window_out(H, k[0], s[0], t, b, d[0], ceil)
        ow = _window_out(W, k[1], s[1], l, r, d[1], ceil)
        # extend past the padding so that every window is whole
        need_h = (oh - 1) * s[0] + d[0] * (k[0] - 1) + 1
        need_w = (ow - 1) * s[1] + d[1] * (k[1] - 1) + 1
        eb = max(b, need_h - H - t)
        er = max(r, need_w - W - l)
        if op == "maxpool":
            xp = F.pad(x, (l, er, t, eb), value=-math.inf)
            y = F.max_pool2d(xp, k, s, 0, d)
            return y[:, :, :oh, :ow]
        ones = torch.ones(1, 1, H, W, dtype=x.dtype)
        xp = F.pad(x, (l, er, t, eb))
        area = k[0] * k[1]
        total = F.avg_pool2d(xp, k, s, 0) * area
        if a.get("count_include_pad", True):
            # input and padding count, not the extension past the padding
            region = torch.zeros(1, 1, H + t + eb, W + l + er, dtype=x.dtype)
            region[:, :, : H + t + b, : W + l + r] = 1
        else:
            region = F.pad(ones, (l, er, t, eb))
        count = F.avg_pool2d(region, k, s, 0) * area
        return (total / count)[:, :, :oh, :ow]

    def _act(self, op, x, a):
        if op == "relu":
            return F.relu(x)
        if op == "relu6":
            return torch.clamp(x, 0, 6)
        if op == "clamp":
            return torch.clamp(x, a.get("min"), a.get("max"))
        if op == "sigmoid":
            return torch.sigmoid(x)
        if op == "hardsigmoid":
            if "alpha" not in a and "beta" not in a:
                return F.hardsigmoid(x)
            return torch.clamp(a.get("alpha", 1 / 6) * x + a.get("beta", 0.5), 0, 1)
        if op == "hardswish":
            return F.hardswish(x)
        if op == "silu":
            return F.silu(x)
        if op == "gelu":
            return F.gelu(x, approximate=a.get("approximate", "none"))
        raise KeyError(op)

    def _norm(self, n, x, a, op):
        name = n["name"]
        C = x.shape[1]
        w = self.param(name + ".weight", [C], "gamma")
        b = self.param(name + ".bias", [C], "bias")
        eps = a.get("eps", 1e-5)
        if op == "batchnorm":
            m = self.param(name + ".running_mean", [C], "mean")
            v = self.param(name + ".running_var", [C], "var")
            return F.batch_norm(x, m, v, w, b, False, 0.0, eps)
        if x.dim() == 2:
            return F.layer_norm(x, (C,), w, b, eps)
        return F.layer_norm(x.permute(0, 2, 3, 1), (C,), w, b, eps).permute(0, 3, 1, 2)

    def _mul(self, x, y):
        if x.dim() != y.dim():  # a vector [C] scales the channels of [C, H, W]
            if x.dim() == 2:
                x = x[:, :, None, None]
            else:
                y = y[:, :, None, None]
        return x * y

    def node(self, n, ins, batch):
        op, a = n["op"], n["attrs"]
        x = ins[0] if ins else None
        if op in ("relu", "relu6", "clamp", "sigmoid", "hardsigmoid", "hardswish", "silu",
                  "gelu"):
            return self._act(op, x, a)
        if op == "conv2d":
            return self._conv(n, x, a)
        if op == "pointwise_linear":
            return self._conv(n, x, a, pointwise=True)
        if op in ("batchnorm", "layernorm"):
            return self._norm(n, x, a, op)
        if op in ("maxpool", "avgpool"):
            return self._pool(x, a, op)
        if op in ("adaptive_avgpool", "adaptive_maxpool", "global_avgpool", "global_maxpool"):
            o = _pair(a.get("out"), 1)
            f = F.adaptive_max_pool2d if "max" in op else F.adaptive_avg_pool2d
            return f(x, o)
        if op == "lrn":
            y = x if x.dim() == 4 else x[:, :, None, None]
            y = F.local_response_norm(y, a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75),
                                      a.get("k", 1.0))
            return y if x.dim() == 4 else y[:, :, 0, 0]
        if op == "linear":
            f = x.flatten(1)
            w = self.param(n["name"] + ".weight", [a["out"], f.shape[1]], "weight", f.shape[1])
            b = self.param(n["name"] + ".bias", [a["out"]], "bias") if a.get("bias", True) else None
            return F.linear(f, w, b)
        if op == "flatten":
            return x.flatten(1)
        if op == "dropout":
            return x
        if op == "concat":
            return torch.cat(ins, 1)
        if op == "slice":
            return x[:, a.get("begin", 0):a["end"]]
        if op == "chunk":
            return torch.chunk(x, a["chunks"], 1)[a["index"]]
        if op == "channel_shuffle":
            g, (N, C, H, W) = a["groups"], x.shape
            return x.reshape(N, g, C // g, H, W).transpose(1, 2).reshape(N, C, H, W)
        if op == "add":
            y = ins[0]
            for t in ins[1:]:
                y = y + t
            return y
        if op == "mean":
            return torch.stack(ins).sum(0) / len(ins)
        if op == "scale":
            return x * a["factor"]
        if op == "mul":
            return self._mul(ins[0], ins[1])
        if op == "parameter":
            p = self.param(n["name"], a["shape"], "parameter")
            return p.unsqueeze(0).expand(batch, *p.shape)
        if op == "softmax":
            return F.softmax(x, 1)
        raise KeyError(f"twin: unknown op {op}")

    def run(self, inputs, batch):
        """inputs: {name: float32 array [batch, ...]} -> ({output name:
        float64 array}, {node name: shape without the batch})"""
        vals = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in inputs.items()}
        shapes = {}
        with torch.no_grad():
            for n in self.net["nodes"]:
                y = self.node(n, [vals[i] for i in n["in"]], batch)
                vals[n["name"]] = y
                shapes[n["name"]] = list(y.shape[1:])
        outs = {o["name"]: vals[o["node"]].numpy() for o in self.net["outputs"]}
        return outs, shapes


def write_safetensors(path, tensors):
    """{name: float32 array} as a safetensors file (no package needed)."""
    import json
    import struct
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
