#!/usr/bin/env python3
"""zoo_onnx.py: the zoo exported from PyTorch to ONNX, compiled by cnncc.

    tests/onnx/zoo_onnx.py CNNCC WORKDIR NET [NET ...] [--configs 11s,13d,17s]
                           [--rotate] [--batches 1,3]
    tests/onnx/zoo_onnx.py --list [--quick]

For each network (the e2e suite's: tests/e2e/make_ref.py builds the same
PyTorch module with the same seeded, non-trivial weights; and the modern
torchvision networks of MODERN below, built the same way until make_ref.py
lists them) and each configuration OPSET + (d)ynamic or (s)tatic batch
axis, the module is exported with torch.onnx.export, compiled by cnncc
from the .onnx, run at each batch size (the network's own, make_ref's: 1
and 3 for the original five, 1 and 2 for the others; or --batches) through
the ABI (the Python module) and compared with PyTorch:
max|y - ref| <= 1e-4 * max|ref|. A static export (batch fixed at 1 in the
model) still runs at any batch size: cnncc's batch is never part of the
model. --rotate picks one configuration per network, turning through
--configs by the network's position, for the CI subset. --list prints the
networks (--quick: those of the quick ctest, all but the largest modern
ones, which only the long run exports).

The first configuration of each network is also written back as a spec
(--emit=spec), compiled with the written weights, and must give the same
output bits as the .onnx.

Then, when the network has a YAML spec (examples/NET.yaml, or
tests/e2e/NET.yaml), the graph after the passes is compared with the
spec's (same weights): kernels launched per sample and arena bytes, from
`cnncc --stats --emit=ir`. They are printed side by side; a difference is
not a failure (the exporter folds BatchNorm into the convs itself, ...),
docs/onnx.md explains the ones there are. A network without a spec yet is
compared with PyTorch only.
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402

import cnncc  # noqa: E402
import make_ref  # noqa: E402

TOL = 1e-4

# torchvision 0.14's mobile and efficient networks (issue 13), exported and
# checked like the others. make_ref.py's own rows win once it has them
# (then its specs, weights and spreads are the e2e suite's); until then
# these build the torchvision model the same way, with every activation's
# input spread as in make_ref's modern_blocks (SPREAD) so that each regime
# of each nonlinearity is reached. name -> (constructor, input shape,
# parameter count).
MODERN = {
    "mobilenet_v2": ("mobilenet_v2", {}, [3, 224, 224], 3_504_872),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}, [3, 224, 224], 2_542_856),
    "mobilenet_v3_large": ("mobilenet_v3_large", {}, [3, 224, 224], 5_483_032),
    "efficientnet_b0": ("efficientnet_b0", {}, [3, 224, 224], 5_288_548),
    "efficientnet_b3": ("efficientnet_b3", {}, [3, 300, 300], 12_233_232),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", {}, [3, 224, 224], 2_278_604),
    "mnasnet1_0": ("mnasnet1_0", {}, [3, 224, 224], 4_383_312),
    "regnet_y_400mf": ("regnet_y_400mf", {}, [3, 224, 224], 4_344_144),
    "regnet_x_1_6gf": ("regnet_x_1_6gf", {}, [3, 224, 224], 9_190_136),
    "inception_v3": ("inception_v3", {"aux_logits": False, "init_weights": True},
                     [3, 299, 299], 23_834_568),
    "convnext_tiny": ("convnext_tiny", {}, [3, 224, 224], 28_589_128),
}
# The modern networks the quick ctest (onnx_zoo) leaves to the long run:
# the largest, which take minutes each to export, compile and run.
LONG_ONLY = {"efficientnet_b3", "regnet_x_1_6gf", "inception_v3", "convnext_tiny"}


def register_modern():
    """MODERN's networks into make_ref's tables, where it has no row yet."""
    for name, (ctor, kw, shape, params) in MODERN.items():
        if name in make_ref.NETWORKS:
            continue
        make_ref.NETWORKS[name] = make_ref.Net(
            lambda ctor=ctor, kw=kw: getattr(make_ref.TV, ctor)(**kw), shape, params, (1, 2),
            None)
        make_ref.SPREAD.setdefault(name, {"tails": 8.0, "kinks": 4.0})


def all_networks():
    return list(make_ref.NETWORKS) + [n for n in MODERN if n not in make_ref.NETWORKS]


def spec_of(net):
    """The network's YAML spec, or None when it has none (yet)."""
    for d in ("examples", os.path.join("tests", "e2e")):
        path = os.path.join(ROOT, d, net + ".yaml")
        if os.path.exists(path):
            return path
    return None


def export(model, shape, path, opset, dynamic):
    import torch
    x = torch.zeros(1, *shape)
    kw = {}
    if dynamic:
        kw["dynamic_axes"] = {"image": {0: "batch"}, "out": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=opset, input_names=["image"],
                          output_names=["out"], do_constant_folding=True, **kw)


def stats(cnncc_exe, src, extra):
    """(kernels launched per sample, arena bytes) of src after the passes."""
    r = subprocess.run([cnncc_exe, src, "--stats", "--emit=ir", "-o", "/dev/null", "-q"] + extra,
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None
    k = re.search(r"kernels: (\d+) launched", r.stderr)
    a = re.search(r"plan-memory: .*?(\d+) bytes", r.stderr)
    return (int(k.group(1)) if k else -1, int(a.group(1)) if a else -1, r.stderr)


def arena_of(text):
    m = re.search(r"planned (\d+)", text)
    return int(m.group(1)) if m else -1


def main():
    if sys.argv[1:2] == ["--list"]:
        quick = "--quick" in sys.argv[2:]
        print("\n".join(n for n in all_networks() if not (quick and n in LONG_ONLY)))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("cnncc")
    ap.add_argument("work")
    ap.add_argument("nets", nargs="+")
    ap.add_argument("--configs", default="11s,11d,13s,13d,17s,17d")
    ap.add_argument("--rotate", action="store_true")
    ap.add_argument("--batches", help="batch sizes (default: the network's own)")
    ap.add_argument("--update-docs", help="write the results table into this file's zoo block")
    a = ap.parse_args()
    make_ref.load_torch()
    register_modern()
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(a.work, exist_ok=True)
    configs = [(int(c[:-1]), c[-1] == "d") for c in a.configs.split(",")]
    all_nets = all_networks()
    failures = 0
    rows = []
    for net in a.nets:
        row = {"net": net, "ok": [], "bad": [], "worst": 0.0, "cmp": "", "spec": "?"}
        rows.append(row)
        if net not in make_ref.NETWORKS:
            print(f"FAIL {net}: not a network of make_ref.py or MODERN")
            failures += 1
            continue
        model, info = make_ref.build(net)
        batches = ([int(b) for b in a.batches.split(",")] if a.batches
                   else list(info.batches))
        torch.manual_seed(1234)
        inputs = {b: make_ref.make_input(b, info.shape) for b in batches}
        with torch.no_grad():
            refs = {b: model(x).numpy() for b, x in inputs.items()}
        mine = configs
        last_onnx = None
        if a.rotate:
            mine = [configs[all_nets.index(net) % len(configs)]]
        for opset, dyn in mine:
            tag = f"{net}.opset{opset}.{'dynamic' if dyn else 'static'}"
            onnx_path = os.path.join(a.work, tag + ".onnx")
            so = os.path.join(a.work, tag + ".so")
            t0 = time.time()
            export(model, info.shape, onnx_path, opset, dyn)
            t1 = time.time()
            r = subprocess.run([a.cnncc, onnx_path, "-o", so, "-q"], capture_output=True, text=True)
            t2 = time.time()
            if r.returncode != 0:
                print(f"FAIL {tag}: cnncc exit {r.returncode}:\n{r.stderr}")
                failures += 1
                row["bad"].append(f"{opset}{'d' if dyn else 's'}")
                continue
            worst = 0.0
            with cnncc.load(so) as m:
                for b in batches:
                    y = m(inputs[b].numpy())
                    ref = refs[b]
                    err = float(np.abs(y - ref).max() / np.abs(ref).max())
                    worst = max(worst, err)
            ok = worst <= TOL
            # The readable import: --emit=spec, compiled with its weights,
            # must give the same output bits as the .onnx (first config only).
            if ok and (opset, dyn) == mine[0]:
                yaml = os.path.join(a.work, tag + ".yaml")
                so2 = os.path.join(a.work, tag + ".spec.so")
                r1 = subprocess.run([a.cnncc, onnx_path, "--emit=spec", "-o", yaml, "-q"],
                                    capture_output=True, text=True)
                r2 = r1.returncode == 0 and subprocess.run(
                    [a.cnncc, yaml, "--weights", yaml[:-5] + ".safetensors", "-o", so2, "-q"],
                    capture_output=True, text=True)
                same = False
                if r2 and r2.returncode == 0:
                    x = inputs[batches[-1]].numpy()
                    with cnncc.load(so) as m1, cnncc.load(so2) as m2:
                        same = np.array_equal(m1(x), m2(x))
                print(f"     {tag}: --emit=spec round trip: "
                      f"{'same bits' if same else 'FAILED: ' + (r1.stderr or (r2 and r2.stderr) or 'outputs differ')}")
                ok = same
                row["spec"] = "same bits" if same else "FAILED"
            failures += not ok
            row["ok" if ok else "bad"].append(f"{opset}{'d' if dyn else 's'}")
            row["worst"] = max(row["worst"], worst)
            print(f"{'ok  ' if ok else 'FAIL'} {tag}: max|y - ref| / max|ref| = {worst:.2e} "
                  f"(batches {','.join(map(str, batches))}; export {t1 - t0:.1f} s, "
                  f"compile {t2 - t1:.1f} s)")
            os.unlink(so)
            last_onnx = onnx_path
        # The graph after the passes, against the spec's.
        spec = spec_of(net)
        if spec is None:
            print(f"     {net}: no spec yet (examples/{net}.yaml): kernels and arena not compared")
        elif last_onnx:
            wts = os.path.join(a.work, net + ".safetensors")
            state = {k: v for k, v in model.state_dict().items()
                     if not k.endswith("num_batches_tracked")}
            make_ref.write_safetensors(wts, state)
            s1 = stats(a.cnncc, spec, ["--weights", wts])
            s2 = stats(a.cnncc, last_onnx, [])
            if s1 and s2:
                a1, a2 = arena_of(s1[2]), arena_of(s2[2])
                same = "same" if (s1[0], a1) == (s2[0], a2) else "differ"
                print(f"     {net}: kernels {s1[0]} (spec) / {s2[0]} (onnx), arena {a1} / {a2} "
                      f"bytes: {same}")
                row["cmp"] = (f"{s1[0]} / {s2[0]}", f"{a1:,} / {a2:,}")
            else:
                which = f"spec {spec} (with the model's weights)" if not s1 else "model"
                print(f"FAIL {net}: the {which} does not compile with --stats --emit=ir")
                failures += 1
            os.unlink(wts)
        for f in os.listdir(a.work):
            if f.startswith(net + ".opset"):
                os.unlink(os.path.join(a.work, f))
    print(f"zoo_onnx: {failures} failure(s)")
    if a.update_docs:
        own = "each network's own (1 and 3 for the original five, 1 and 2 for the others)"
        lines = [f"Configurations: {a.configs} (opset; d: dynamic batch axis, s: static); "
                 f"batches {a.batches or own}; tolerance {TOL:g}·max|ref|.", "",
                 "| network | configurations that match PyTorch | worst max\\|y − ref\\| / "
                 "max\\|ref\\| | kernels (spec / onnx) | arena bytes (spec / onnx) | "
                 "--emit=spec round trip |",
                 "|---|---|---|---|---|---|"]
        for r in rows:
            k, ar = r["cmp"] if r["cmp"] else ("?", "?")
            got = ", ".join(r["ok"]) + (f"; FAILED: {', '.join(r['bad'])}" if r["bad"] else "")
            lines.append(f"| {r['net']} | {got} | {r['worst']:.1e} | {k} | {ar} | {r['spec']} |")
        block = "\n".join(lines) + "\n"
        text = open(a.update_docs).read()
        b, e = "<!-- zoo:begin -->\n", "<!-- zoo:end -->"
        head, rest = text.split(b, 1)
        _, tail = rest.split(e, 1)
        with open(a.update_docs, "w") as f:
            f.write(head + b + block + e + tail)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
