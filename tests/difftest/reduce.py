#!/usr/bin/env python3
"""reduce.py: shrinks a network that difftest.py found failing to a minimal
spec, and writes it as a regression (tests/difftest/gen.h is the map).

    reduce.py --build BUILD CASE_DIR --seed S --config NAME [--kind KIND]
              [--out REGRESSION_BASE] [--note TEXT] [--compiler OLD_BUILD]
    reduce.py --build BUILD CASE_DIR --seed S --config NAME --probe

CASE_DIR is a case difftest.py kept (net.json, the twin). The reduction
works on the twin, a flat list of layers, and writes each candidate as a
flat spec (one layer per line, full names with '.' made '_'); a candidate
is kept when compiling it in configuration NAME still gives a finding of
the same kind (compile-exit-2, mismatch, nonfinite, bits, run-crash, ...).
The steps, repeated until none helps:

  - drop a graph output (one is kept);
  - bypass a layer: its readers read one of its inputs of the same shape;
  - cut a layer: it becomes a graph input of its shape (what fed it goes);
  - drop one input of a concat, add or mean;
  - drop an attribute (the op's default instead);
  - an output's layer goes, its input becomes the output;
  - halve the channels, the height or the width of a graph input;

and layers no output needs are removed. Parameter values follow the
original layer names, so a reduced network keeps the values of what it
keeps. --out writes BASE.yaml (the spec, with a comment saying what it
caught), BASE.safetensors and BASE.ref.json (the inputs and PyTorch's
outputs, float64), which difftest.py --replay compiles in every
configuration. --probe makes every layer an output and prints the first
one on which cnncc and PyTorch disagree.
"""
import argparse
import copy
import json
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import difftest  # noqa: E402


def flat(name):
    return name.replace(".", "_")


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_spec(net, path, comment=""):
    lines = [f"# {l}" for l in comment.splitlines()] + ["cnncc: 1", f"name: {net['name']}",
                                                        "inputs:"]
    for i in net["inputs"]:
        lines.append(f"  {flat(i['name'])}: {yaml_value(i['shape'])}")
    lines.append("outputs: [" + ", ".join(flat(o["node"]) for o in net["outputs"]) + "]")
    lines.append("layers:")
    for n in net["nodes"]:
        parts = [f"name: {flat(n['name'])}", f"op: {n['op']}"]
        if n["in"]:
            parts.append("in: [" + ", ".join(flat(x) for x in n["in"]) + "]")
        parts += [f"{k}: {yaml_value(v)}" for k, v in n["attrs"].items()]
        lines.append("  - {" + ", ".join(parts) + "}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def flatten_net(net):
    """The twin as a flat spec would name it: '.' -> '_', outputs named by
    their layers; each node remembers its original name (parameter values)."""
    net = copy.deepcopy(net)
    for n in net["nodes"]:
        n.setdefault("orig", n["name"])
        n["name"] = flat(n["name"])
        n["in"] = [flat(x) for x in n["in"]]
    for i in net["inputs"]:
        i["name"] = flat(i["name"])
    outs, seen = [], set()
    for o in net["outputs"]:
        if flat(o["node"]) not in seen:
            seen.add(flat(o["node"]))
            outs.append({"name": flat(o["node"]), "node": flat(o["node"])})
    net["outputs"] = outs
    return net


def prune(net):
    """Only the layers the outputs need, and the inputs they read."""
    need = {o["node"] for o in net["outputs"]}
    for n in reversed(net["nodes"]):
        if n["name"] in need:
            need.update(n["in"])
    net["nodes"] = [n for n in net["nodes"] if n["name"] in need]
    net["inputs"] = [i for i in net["inputs"] if i["name"] in need] or net["inputs"][:1]
    return net


class Reducer:
    def __init__(self, args):
        self.args = args
        self.build = difftest.snapshot(args.build, args.work, args.compiler)
        self.tries = 0
        self.config = args.config
        self.flags = dict(difftest.CONFIGS)[args.config]

    def shapes(self, net):
        from twin import Twin
        xs = {i["name"]: np.zeros([1] + i["shape"], np.float32) for i in net["inputs"]}
        _, shapes = Twin(net, self.args.seed).run(xs, 1)
        return shapes

    def findings(self, net, d):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        write_spec(net, os.path.join(d, "net.yaml"))
        try:
            meta = difftest.prepare(net, self.args.seed, d)
        except Exception:
            return None  # not a valid network (the twin refuses it)
        _, f = difftest.run_config(self.build, d, meta, self.config, self.flags)
        return f

    def interesting(self, net):
        self.tries += 1
        f = self.findings(net, os.path.join(self.args.work, "try"))
        if f is None:
            return False
        return any(x["kind"] == self.args.kind for x in f)

    def candidates(self, net):
        """Smaller networks, most reducing first."""
        outs = net["outputs"]
        for k in range(len(outs)):
            if len(outs) > 1:
                c = copy.deepcopy(net)
                del c["outputs"][k]
                yield c
        try:
            shapes = self.shapes(net)
        except Exception:
            return
        for i in net["inputs"]:
            shapes[i["name"]] = i["shape"]
        names = [n["name"] for n in net["nodes"]]
        for idx in range(len(names)):  # cut: a layer becomes an input
            n = net["nodes"][idx]
            if not n["in"]:
                continue
            c = copy.deepcopy(net)
            del c["nodes"][idx]
            c["inputs"].append({"name": n["name"], "shape": shapes[n["name"]]})
            yield c
        for idx in range(len(names)):  # bypass
            n = net["nodes"][idx]
            for src in dict.fromkeys(n["in"]):
                if shapes.get(src) != shapes[n["name"]]:
                    continue
                c = copy.deepcopy(net)
                del c["nodes"][idx]
                for m in c["nodes"]:
                    m["in"] = [src if x == n["name"] else x for x in m["in"]]
                for o in c["outputs"]:
                    if o["node"] == n["name"]:
                        o["node"] = o["name"] = src
                yield c
        for idx, n in enumerate(net["nodes"]):  # fewer inputs
            least = {"concat": 1, "add": 2, "mean": 2}.get(n["op"])
            if least and len(n["in"]) > least:
                for k in range(len(n["in"])):
                    c = copy.deepcopy(net)
                    del c["nodes"][idx]["in"][k]
                    yield c
        for idx, n in enumerate(net["nodes"]):  # defaults
            for key in list(n["attrs"]):
                c = copy.deepcopy(net)
                del c["nodes"][idx]["attrs"][key]
                yield c
        for k, o in enumerate(outs):  # an output's layer goes: its input is the output
            n = next((m for m in net["nodes"] if m["name"] == o["node"]), None)
            for src in dict.fromkeys(n["in"] if n else []):
                c = copy.deepcopy(net)
                c["outputs"][k] = {"name": src, "node": src}
                if any(x["node"] == src for j, x in enumerate(outs) if j != k):
                    del c["outputs"][k]
                yield c
        for k, i in enumerate(net["inputs"]):  # fewer channels
            if i["shape"][0] > 1:
                c = copy.deepcopy(net)
                c["inputs"][k]["shape"][0] = (i["shape"][0] + 1) // 2
                yield c
        for k, i in enumerate(net["inputs"]):  # smaller planes
            if len(i["shape"]) == 3:
                for ax in (1, 2):
                    if i["shape"][ax] > 1:
                        c = copy.deepcopy(net)
                        c["inputs"][k]["shape"][ax] = (i["shape"][ax] + 1) // 2
                        yield c

    def reduce(self, net):
        net = prune(flatten_net(net))
        if not self.interesting(net):
            sys.exit("reduce.py: the flattened network does not fail that way")
        progress = True
        while progress:
            progress = False
            for c in self.candidates(net):
                c = prune(c)
                if len(c["nodes"]) == 0:
                    continue
                if self.interesting(c):
                    net = c
                    progress = True
                    difftest.log(f"reduce: {len(net['nodes'])} layers, "
                                 f"{len(net['outputs'])} outputs ({self.tries} tries)")
                    break
        return net


def write_regression(r, net, base, note):
    d = os.path.join(r.args.work, "final")
    f = r.findings(net, d)
    detail = next(x["detail"] for x in f if x["kind"] == r.args.kind)
    comment = (f"{note}\nReduced by tests/difftest/reduce.py from seed {r.args.seed} "
               f"(configuration {r.config}: {r.args.kind}).\nBefore the fix: {detail}")
    write_spec(net, base + ".yaml", comment)
    shutil.copy(os.path.join(d, "net.safetensors"), base + ".safetensors")
    with open(os.path.join(d, "meta.json")) as fm:
        meta = json.load(fm)
    ref = {"batch": meta["batch"], "inputs_meta": meta["inputs"], "outputs_meta": meta["outputs"]}
    for suffix, key in (("", ""), (".nonfinite", "_nonfinite")):
        ref["inputs" + key] = {
            i["name"]: [float(v) for v in np.fromfile(os.path.join(d, f"in{k}{suffix}.f32"),
                                                      np.float32)]
            for k, i in enumerate(meta["inputs"])}
        ref["outputs" + key] = {
            o["name"]: [float(v) for v in np.fromfile(os.path.join(d, f"ref{k}{suffix}.f64"),
                                                      np.float64)]
            for k, o in enumerate(meta["outputs"])}
    with open(base + ".ref.json", "w") as fr:
        json.dump(ref, fr)
    difftest.log(f"reduce: wrote {base}.yaml, .safetensors, .ref.json")


def probe(r, net):
    """Every layer an output: the first one that disagrees."""
    net = prune(flatten_net(net))
    net["outputs"] = [{"name": n["name"], "node": n["name"]} for n in net["nodes"]]
    f = r.findings(net, os.path.join(r.args.work, "probe"))
    if f is None:
        sys.exit("reduce.py: the twin refuses the network")
    order = {n["name"]: k for k, n in enumerate(net["nodes"])}
    hits = []
    for x in f:
        name = x["detail"].split(" ")[1] if x["detail"].startswith("output ") else None
        hits.append((order.get(name, -1), x))
    for _, x in sorted(hits, key=lambda t: t[0])[:5]:
        print(f"{x['kind']}: {x['detail']}")
    if not hits:
        print("no layer disagrees")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case")
    ap.add_argument("--build", required=True)
    ap.add_argument("--compiler", help="the cnncc build to reduce against (default: --build)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--kind", default="mismatch")
    ap.add_argument("--out")
    ap.add_argument("--note", default="")
    ap.add_argument("--work", default="/tmp/cnncc-reduce")
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--no-concurrent", action="store_true")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    if args.compiler:
        args.compiler = os.path.abspath(args.compiler)
    # an older runtime may not allow two threads on one model
    difftest.NO_CONCURRENT = args.no_concurrent or bool(args.compiler)
    os.makedirs(args.work, exist_ok=True)
    import torch
    torch.set_num_threads(1)
    with open(os.path.join(args.case, "net.json")) as f:
        net = json.load(f)
    r = Reducer(args)
    if args.probe:
        return probe(r, net)
    net = r.reduce(net)
    write_spec(net, os.path.join(args.work, "reduced.yaml"))
    print(open(os.path.join(args.work, "reduced.yaml")).read())
    if args.out:
        write_regression(r, net, args.out, args.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
