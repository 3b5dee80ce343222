#!/usr/bin/env python3
"""zoo_onnx.py: the zoo exported from PyTorch to ONNX, compiled by cnncc.

    tests/onnx/zoo_onnx.py CNNCC WORKDIR NET [NET ...] [--configs 11s,13d,17s]
                           [--rotate] [--batches 1,3]

For each network (the e2e suite's: tests/e2e/make_ref.py builds the same
PyTorch module with the same seeded, non-trivial weights) and each
configuration OPSET + (d)ynamic or (s)tatic batch axis, the module is
exported with torch.onnx.export, compiled by cnncc from the .onnx, run at
each batch size through the ABI (the Python module) and compared with
PyTorch: max|y - ref| <= 1e-4 * max|ref|. A static export (batch fixed
at 1 in the model) still runs at any batch size: cnncc's batch is never
part of the model. --rotate picks one configuration per network, turning
through --configs by the network's position, for the CI subset.

The first configuration of each network is also written back as a spec
(--emit=spec), compiled with the written weights, and must give the same
output bits as the .onnx.

Then the graph after the passes is compared with the YAML spec's
(examples/NET.yaml, same weights): kernels launched per sample and arena
bytes, from `cnncc --stats --emit=ir`. They are printed side by side; a
difference is not a failure (the exporter folds BatchNorm into the convs
itself, ...), docs/onnx.md explains the ones there are.
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
    ap = argparse.ArgumentParser()
    ap.add_argument("cnncc")
    ap.add_argument("work")
    ap.add_argument("nets", nargs="+")
    ap.add_argument("--configs", default="11s,11d,13s,13d,17s,17d")
    ap.add_argument("--rotate", action="store_true")
    ap.add_argument("--batches", default="1,3")
    ap.add_argument("--update-docs", help="write the results table into this file's zoo block")
    a = ap.parse_args()
    make_ref.load_torch()
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(a.work, exist_ok=True)
    configs = [(int(c[:-1]), c[-1] == "d") for c in a.configs.split(",")]
    batches = [int(b) for b in a.batches.split(",")]
    all_nets = list(make_ref.NETWORKS)
    failures = 0
    rows = []
    for net in a.nets:
        row = {"net": net, "ok": [], "bad": [], "worst": 0.0, "cmp": "", "spec": "?"}
        rows.append(row)
        model, info = make_ref.build(net)
        torch.manual_seed(1234)
        inputs = {b: make_ref.make_input(b, info.shape) for b in batches}
        with torch.no_grad():
            refs = {b: model(x).numpy() for b, x in inputs.items()}
        mine = configs
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
                  f"(batches {a.batches}; export {t1 - t0:.1f} s, compile {t2 - t1:.1f} s)")
            os.unlink(so)
            last_onnx = onnx_path
        # The graph after the passes, against the spec's.
        spec = os.path.join(ROOT, "examples", net + ".yaml")
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
        os.unlink(wts)
        for f in os.listdir(a.work):
            if f.startswith(net + ".opset"):
                os.unlink(os.path.join(a.work, f))
    print(f"zoo_onnx: {failures} failure(s)")
    if a.update_docs:
        lines = [f"Configurations: {a.configs} (opset; d: dynamic batch axis, s: static); "
                 f"batches {a.batches}; tolerance {TOL:g}·max|ref|.", "",
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
