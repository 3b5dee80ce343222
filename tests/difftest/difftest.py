#!/usr/bin/env python3
"""difftest.py: random networks, compiled by cnncc in every configuration,
against their PyTorch twins (tests/difftest/gen.h is the map).

    difftest.py --build BUILD --seeds A-B [--jobs N] [--work DIR] [--out RESULTS]
                [--rotate K] [--configs NAME...] [--small] [--keep]
    difftest.py --build BUILD --replay DIR...      the regressions (no torch)

For each seed: cnn_gen writes the spec and its twin; twin.py makes the
weights (safetensors), 3 random input samples and PyTorch's outputs in
float64 (and again for inputs holding NaN and infinities). Then, for each
configuration of CONFIGS, cnncc compiles the spec with --stats, and
cnn_difftest_run runs the .so: the reference run (batch 3, one thread)
against PyTorch,

    max |ours - ref| <= tol * max |ref|   per output,

tol 1e-4, or 1e-3 (docs/performance.md's bound) when the compile used a
Winograd kernel; and every other run of its matrix (each sample alone,
2 threads, buffers 4 bytes off a 64-byte boundary, two host threads at
once) bit for bit against the reference run. With non-finite inputs, a
NaN or infinity must come out where PyTorch has one and nowhere else
(same sign), except after Winograd, which spreads an infinity over its
tile by design (only "no crash, no hang" there).

A finding is anything else: a compile that fails (a valid spec refused is
a finding too), a crash, a hang, a mismatch, output names or shapes that
are not the spec's. Each is written to RESULTS/findings.jsonl with the
seed and configuration, and the case directory is kept in WORK/SEED for
reduce.py. RESULTS/summary.json counts graphs, compiles, runs and
findings, and which passes and kernels (op/kernel rows of the backend's
table, from --stats) the networks exercised.
"""
import argparse
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# name -> cnncc flags. -O0/-O2/-O3 with Winograd on (the default at -O2/-O3)
# and off; -O1; Winograd on every 3x3 conv it can run (thresholds at 1);
# the blocked layout without the fusions (so BN, scale-shifts and
# activations run as kernels of their own on NCHW16c); odd register tiles;
# two other targets (AVX2, SSE4.2); external weights.
CONFIGS = [
    ("O0", ["-O0"]),
    ("O1", ["-O1"]),
    ("O2", ["-O2"]),
    ("O2-nowino", ["-O2", "--winograd=off"]),
    ("O3", ["-O3"]),
    ("O3-nowino", ["-O3", "--winograd=off"]),
    ("O3-wino-all", ["-O3", "--tune", "winograd.min_ic=1", "--tune", "winograd.min_hw=1"]),
    ("O2-nofuse", ["-O2", "--passes=fold-1x1,layout,concat-elim,plan-memory"]),
    ("O2-tiles", ["-O2", "--tune", "conv.tile=3", "--tune", "conv.ocb=1",
                  "--tune", "grouped.tile=5", "--tune", "conv.order=1"]),
    ("O2-avx2", ["-O2", "--target-cpu=x86-64-v3"]),
    ("O2-sse", ["-O2", "--target-cpu=x86-64-v2"]),
    ("O3-extw", ["-O3", "--external-weights"]),
]
# Reduced precision, run only when named (--configs bf16 bf16-noamx int8):
# the kernels of --precision=bf16 (AMX where the host has it; with amx=0
# the vdpbf16ps or widening ones) and int8 (vpdpbusd, AMX). Their bound is
# loose, a wrong index rather than rounding (docs/precision.md measures the
# rounding): 0.5 of max|ref| for bf16 (seed 7206's repeated SE blocks lose
# 0.30 on AMX, and 0.21 from the bf16 weights alone), 0.5 for int8 (whose
# error on a random network is that of its calibration: the reference
# inputs, FILE below). int8 compiles only a network of one input (what
# --calibrate takes), skips the non-finite inputs (quantization clamps an
# infinity and has no NaN) and the outputs where PyTorch overflows on the
# finite ones (inf or NaN: seed 7298; clamped int8 stays finite); the run
# matrix (threads, batch, alignment, concurrent callers) is still bit for
# bit.
PRECISION_CONFIGS = [
    ("bf16", ["-O2", "--precision=bf16"], 0.5),
    ("bf16-noamx", ["-O2", "--precision=bf16", "--tune", "amx=0"], 0.5),
    ("int8", ["-O2", "--precision=int8", "--calibrate=FILE"], 0.5),
]
BATCH = 3
TOL, TOL_WINOGRAD = 1e-4, 1e-3

# What each pass can do, as its --stats lines say it (a nonzero count).
PASS_HIT = {
    "fuse-bn/folded": r"^fuse-bn: folded [1-9]",
    "fuse-bn/scale-shift": r"^fuse-bn: .*; [1-9]\d* became",
    "fold-linear/mul-to-scale-shift": r"^fold-linear: [1-9]\d* muls",
    "fold-linear/into-conv-before": r"^fold-linear: folded [1-9]",
    "fold-linear/into-conv-after": r"^fold-linear: .*and [1-9]\d* into the conv after",
    "fuse-epilogue/residual": r"^fuse-epilogue: fused [1-9]",
    "fuse-epilogue/activation": r"^fuse-epilogue: .*and [1-9]\d* activations",
    "fold-shuffle": r"^fold-shuffle: folded [1-9]",
    "fold-1x1": r"^fold-1x1: merged [1-9]",
    "fuse-gate": r"^fuse-gate: applied [1-9]",
    "pad-channels": r"^pad-channels: padded [1-9]",
    "layout/nchw16c": r"^layout: [1-9]\d* of",
    "layout/reorders": r"^layout: .*, [1-9]\d* reorders",
    "concat-elim/placed": r"^concat-elim: [1-9]\d* of \d+ concat inputs",
    "concat-elim/elided": r"^concat-elim: .*; [1-9]\d* of \d+ concats elided",
    "concat-elim/chained": r"^concat-elim: [1-9]\d* concats rewritten",
    "plan-memory/planned": r"^plan-memory: naive \d+ bytes, planned",
    "plan-memory/order": r"^plan-memory: a memory-aware order",
    "plan-memory/naive": r"^plan-memory: naive layout",
}


def log(*a):
    print(*a, flush=True)


TOOLS = {"cnncc": "cnncc", "libcnnrt.a": "libcnnrt.a",
         "cnn_gen": "tests/difftest/cnn_gen",
         "cnn_difftest_run": "tests/difftest/cnn_difftest_run"}


def tool(bin_dir, name):
    return os.path.join(bin_dir, name)


def snapshot(build, work, compiler=None):
    """Copies the programs a campaign runs into WORK/bin (cnncc finds the
    runtime library beside itself), so that rebuilding the tree while a
    campaign runs changes nothing under it. compiler: another build's
    cnncc and runtime (reduce.py: the one that had the bug)."""
    d = os.path.join(work, "bin")
    os.makedirs(d, exist_ok=True)
    for name, rel in TOOLS.items():
        src = compiler if compiler and name in ("cnncc", "libcnnrt.a") else build
        shutil.copy2(os.path.join(src, rel), os.path.join(d, name))
    return d


# ---------------------------------------------------------------- one case
def make_case(build, seed, case_dir, small=False):
    """Spec, twin, weights, inputs and references of one seed in case_dir."""
    from twin import Twin, write_safetensors
    os.makedirs(case_dir, exist_ok=True)
    cmd = [tool(build, "cnn_gen"), "--seed", str(seed),
           "--out", case_dir] + (["--small"] if small else [])
    subprocess.run(cmd, check=True)
    with open(os.path.join(case_dir, "net.json")) as f:
        net = json.load(f)
    prepare(net, seed, case_dir)
    return net


def prepare(net, seed, case_dir):
    """Weights, inputs (normal and non-finite) and the twin's outputs."""
    from twin import Twin, write_safetensors
    rng = np.random.default_rng(seed)
    xs = {i["name"]: rng.standard_normal([BATCH] + i["shape"]).astype(np.float32)
          for i in net["inputs"]}
    twin = Twin(net, seed)
    ref, shapes = twin.run(xs, BATCH)
    write_safetensors(os.path.join(case_dir, "net.safetensors"), twin.params)
    nf = {}
    for k, (name, x) in enumerate(xs.items()):
        y = x.copy().reshape(BATCH, -1)
        for s in range(BATCH):  # a NaN in sample 0, +inf in 1, -inf and +inf in 2
            j = rng.integers(0, y.shape[1])
            y[s, j] = [np.nan, np.inf, -np.inf][s % 3]
            if s == 2:
                y[s, rng.integers(0, y.shape[1])] = np.inf
        nf[name] = y.reshape(x.shape)
        x.tofile(os.path.join(case_dir, f"in{k}.f32"))
        nf[name].tofile(os.path.join(case_dir, f"in{k}.nonfinite.f32"))
    with np.errstate(all="ignore"):
        ref_nf, _ = Twin(net, seed).run(nf, BATCH)
    for k, o in enumerate(net["outputs"]):
        ref[o["name"]].astype(np.float64).tofile(os.path.join(case_dir, f"ref{k}.f64"))
        ref_nf[o["name"]].astype(np.float64).tofile(
            os.path.join(case_dir, f"ref{k}.nonfinite.f64"))
    meta = {"outputs": [{"name": o["name"], "shape": shapes.get(o["node"]) or
                         next(i["shape"] for i in net["inputs"] if i["name"] == o["node"])}
                        for o in net["outputs"]],
            "inputs": net["inputs"], "batch": BATCH}
    with open(os.path.join(case_dir, "meta.json"), "w") as f:
        json.dump(meta, f)
    return meta


# ---------------------------------------------------------------- checking
def compare(ours, ref, tol):
    """(ok, ratio, where): max|ours - ref| against tol * max|ref|."""
    ref_max = float(np.max(np.abs(ref))) if ref.size else 0.0
    with np.errstate(invalid="ignore"):
        err = np.abs(ours.astype(np.float64) - ref)
    both_inf = np.isinf(ref) & (ours.astype(np.float64) == ref)
    err[both_inf] = 0
    err[np.isnan(ref) & np.isnan(ours)] = 0  # a NaN where PyTorch has one
    err[np.isnan(err)] = np.inf
    if not np.isfinite(ref_max):
        finite = np.isfinite(ref)
        ref_max = float(np.max(np.abs(ref[finite]))) if finite.any() else 0.0
    worst = int(np.argmax(err)) if err.size else 0
    e = float(err.flat[worst]) if err.size else 0.0
    ok = e <= tol * ref_max + 1e-30
    ratio = e / ref_max if ref_max > 0 else (0.0 if e == 0 else math.inf)
    return ok, ratio, worst


def nonfinite_ok(ours, ref):
    """NaN where PyTorch has NaN, the same infinities, finite elsewhere."""
    o = ours.astype(np.float64)
    bad = (np.isnan(o) != np.isnan(ref)) | (np.isinf(o) != np.isinf(ref))
    bad |= np.isinf(ref) & np.isinf(o) & (np.sign(o) != np.sign(ref))
    return not bad.any(), int(np.argmax(bad)) if bad.any() else -1


def parse_stats(text):
    """--stats lines -> (pass features hit, {op/kernel: count})"""
    hit, kernels = set(), {}
    for line in text.splitlines():
        if line.startswith("backend: kernels: "):
            for item in line[len("backend: kernels: "):].split(", "):
                k, n = item.rsplit(" ", 1)
                kernels[k] = kernels.get(k, 0) + int(n)
            continue
        for name, rx in PASS_HIT.items():
            if re.search(rx, line):
                hit.add(name)
    return hit, kernels


NO_CONCURRENT = False  # --no-concurrent: a runtime without thread-safe cnn_run


PRECISION_TOL = {name: tol for name, _, tol in PRECISION_CONFIGS}


def run_config(build, case_dir, meta, cname, flags, timeout=300):
    """Compiles and runs one configuration; returns (record, findings)."""
    cnncc = tool(build, "cnncc")
    runner = tool(build, "cnn_difftest_run")
    so = os.path.join(case_dir, cname + ".so")
    rec = {"config": cname}
    spec = os.path.join(case_dir, "net.yaml")
    if "--calibrate=FILE" in flags:
        if len(meta["inputs"]) != 1:
            rec["skipped"] = "int8 calibrates a network of one input"
            return rec, []
        flags = [f if f != "--calibrate=FILE" else "--calibrate=" + os.path.join(case_dir, "in0.f32")
                 for f in flags]
    cmd = [cnncc, spec, "--weights", os.path.join(case_dir, "net.safetensors"), "-o", so,
           "--stats", "-q"] + flags
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return rec, [{"kind": "compile-hang", "config": cname, "detail": f"over {timeout} s"}]
    rec["compile_s"] = round(time.time() - t0, 3)
    if p.returncode != 0:
        msg = "\n".join(l for l in p.stderr.splitlines()
                        if "error" in l or "internal" in l)[:2000] or p.stderr[-2000:]
        kind = "compile-crash" if p.returncode < 0 else f"compile-exit-{p.returncode}"
        return rec, [{"kind": kind, "config": cname, "detail": msg}]
    hit, kernels = parse_stats(p.stderr)
    rec["passes"], rec["kernels"] = sorted(hit), kernels
    winograd = any(k.endswith("/winograd") for k in kernels)
    cmd = [runner, so, "--dir", case_dir, "--batch", str(meta["batch"])]
    if "--external-weights" in flags:
        cmd += ["--weights", so + ".weights"]
    if NO_CONCURRENT:
        cmd.append("--no-concurrent")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return rec, [{"kind": "run-hang", "config": cname, "detail": "over 120 s"}]
    finally:
        for f in (so, so + ".weights"):
            if os.path.exists(f):
                os.remove(f)
    rec["runs"] = 12
    findings = []
    if r.returncode != 0:
        sig = -r.returncode if r.returncode < 0 else None
        what = f"signal {signal.Signals(sig).name}" if sig else f"exit {r.returncode}"
        return rec, [{"kind": "run-crash", "config": cname,
                      "detail": what + ": " + (r.stderr + r.stdout)[-1500:]}]
    info = None
    for line in r.stdout.splitlines():
        if line.startswith("INFO "):
            info = json.loads(line[5:])
        elif line.startswith("FAIL "):
            findings.append({"kind": "bits", "config": cname, "detail": line[5:]})
    findings += check_info(info, meta, cname)
    tol = PRECISION_TOL.get(cname, TOL_WINOGRAD if winograd else TOL)
    findings += check_outputs(case_dir, meta, cname, tol, winograd or cname == "int8")
    rec["winograd"] = winograd
    return rec, findings


def check_info(info, meta, cname):
    out = []
    if not info:
        return [{"kind": "info", "config": cname, "detail": "no INFO line"}]
    want_in = [(i["name"], i["shape"]) for i in meta["inputs"]]
    got_in = [(i["name"], i["dims"][1:]) for i in info["inputs"]]
    want_out = [(o["name"], o["shape"]) for o in meta["outputs"]]
    got_out = [(o["name"], o["dims"][1:]) for o in info["outputs"]]
    if want_in != got_in:
        out.append({"kind": "info", "config": cname, "detail": f"inputs {got_in}, spec {want_in}"})
    if want_out != got_out:
        out.append({"kind": "info", "config": cname,
                    "detail": f"outputs {got_out}, PyTorch {want_out}"})
    return out


def check_outputs(case_dir, meta, cname, tol, skip_nonfinite):
    findings = []
    for k, o in enumerate(meta["outputs"]):
        n = meta["batch"] * int(np.prod(o["shape"]))
        try:
            ours = np.fromfile(os.path.join(case_dir, f"out{k}.f32"), np.float32)
            ref = np.fromfile(os.path.join(case_dir, f"ref{k}.f64"), np.float64)
        except FileNotFoundError as e:
            findings.append({"kind": "run", "config": cname, "detail": str(e)})
            continue
        if ours.size != n or ref.size != n:
            findings.append({"kind": "shape", "config": cname,
                             "detail": f"output {o['name']}: {ours.size} values, want {n}"})
            continue
        if cname == "int8" and not np.all(np.isfinite(ref)):
            continue  # PyTorch overflowed; int8's clamped ranges cannot
        ok, ratio, at = compare(ours, ref, tol)
        if not ok:
            findings.append({"kind": "mismatch", "config": cname,
                             "detail": f"output {o['name']}: max|ours-ref|/max|ref| = "
                                       f"{ratio:.3g} > {tol:g} at {at}: ours "
                                       f"{ours[at]:.7g}, PyTorch {ref[at]:.7g}"})
        path = os.path.join(case_dir, f"out{k}.nonfinite.f32")
        if not skip_nonfinite and os.path.exists(path):
            o_nf = np.fromfile(path, np.float32)
            r_nf = np.fromfile(os.path.join(case_dir, f"ref{k}.nonfinite.f64"), np.float64)
            good, at = nonfinite_ok(o_nf, r_nf)
            if not good:
                findings.append({"kind": "nonfinite", "config": cname,
                                 "detail": f"output {o['name']} at {at}: ours {o_nf[at]}, "
                                           f"PyTorch {r_nf[at]}"})
    return findings


# ---------------------------------------------------------------- a seed
def run_seed(args, seed):
    case_dir = os.path.join(args.work, str(seed))
    shutil.rmtree(case_dir, ignore_errors=True)
    res = {"seed": seed, "configs": [], "findings": []}
    try:
        net = make_case(args.build, seed, case_dir, args.small)
    except Exception as e:  # the generator or the twin: not a cnncc finding
        res["error"] = f"{type(e).__name__}: {e}"
        return res
    res["layers"] = len(net["nodes"])
    with open(os.path.join(case_dir, "meta.json")) as f:
        meta = json.load(f)
    configs = [c for c in CONFIGS if not args.configs or c[0] in args.configs]
    configs += [c[:2] for c in PRECISION_CONFIGS if args.configs and c[0] in args.configs]
    if args.rotate:  # K configurations per seed, in turn: every one over a campaign
        k = min(args.rotate, len(configs))
        configs = [configs[(seed * k + j) % len(configs)] for j in range(k)]
    for cname, flags in configs:
        rec, f = run_config(args.build, case_dir, meta, cname, flags)
        res["configs"].append(rec)
        res["findings"] += [dict(x, seed=seed) for x in f]
    if not res["findings"] and not args.keep:
        shutil.rmtree(case_dir, ignore_errors=True)
    return res


def summarize(results, out_dir):
    graphs = [r for r in results if "error" not in r]
    s = {"graphs": len(graphs), "generator_errors": len(results) - len(graphs),
         "layers": sum(r.get("layers", 0) for r in graphs),
         "compiles": sum(1 for r in graphs for c in r["configs"] if "compile_s" in c),
         "runs": sum(c.get("runs", 0) for r in graphs for c in r["configs"]),
         "findings": sum(len(r["findings"]) for r in graphs),
         "graphs_with_findings": sum(1 for r in graphs if r["findings"]),
         "compile_s": round(sum(c.get("compile_s", 0) for r in graphs for c in r["configs"]), 1)}
    passes, kernels = {}, {}
    for r in graphs:
        for c in r["configs"]:
            for p in c.get("passes", []):
                passes[p] = passes.get(p, 0) + 1
            for k, n in c.get("kernels", {}).items():
                kernels[k] = kernels.get(k, 0) + n
    s["passes_hit"] = dict(sorted(passes.items()))
    s["kernels_hit"] = dict(sorted(kernels.items()))
    s["passes_missed"] = sorted(set(PASS_HIT) - set(passes))
    s["kernels_missed"] = sorted(set(kernel_rows()) - set(kernels))
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(s, f, indent=1)
    return s


def kernel_rows():
    """The op/kernel rows of backend/kernels.c's table."""
    src = open(os.path.join(HERE, "..", "..", "backend", "kernels.c")).read()
    rows = re.findall(r'\{"([a-z0-9]+)",\s*OP_([A-Z_0-9]+),', src)
    return sorted({f"{op.lower()}/{name}" for name, op in rows})


def campaign(args):
    seeds = []
    for part in args.seeds.split(","):  # A-B, or a list: 1110,1161,3000-3009
        a, _, b = part.partition("-")
        seeds += range(int(a), int(b or a) + 1)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    results = []
    fpath = os.path.join(args.out, "findings.jsonl")
    rpath = os.path.join(args.out, "results.jsonl")
    t0 = time.time()
    with open(fpath, "a") as ff, open(rpath, "a") as rf:
        pool = mp.Pool(args.jobs) if args.jobs > 1 else None
        it = pool.imap_unordered(_worker, [(args, s) for s in seeds]) if pool else \
            (run_seed(args, s) for s in seeds)
        for res in it:
            results.append(res)
            rf.write(json.dumps(res) + "\n")
            rf.flush()
            for f in res["findings"]:
                ff.write(json.dumps(f) + "\n")
                ff.flush()
            n = len(results)
            tag = "error" if "error" in res else f"{len(res['findings'])} findings"
            if res["findings"] or "error" in res or n % 10 == 0:
                log(f"difftest: seed {res['seed']} ({n}/{len(seeds)}, "
                    f"{time.time() - t0:.0f} s): {tag}"
                    + "".join(f"\n  {f['config']}: {f['kind']}: {f['detail'][:300]}"
                              for f in res["findings"][:6])
                    + (f"\n  {res['error']}" if "error" in res else ""))
        if pool:
            pool.close()
    s = summarize(results, args.out)
    log(json.dumps({k: v for k, v in s.items() if not k.startswith("kernels_hit")}, indent=1))
    return 1 if s["findings"] or s["generator_errors"] else 0


def _worker(a):
    args, seed = a
    return run_seed(args, seed)


# ---------------------------------------------------------------- replay
def replay(args):
    """Each regression directory: NAME.yaml, NAME.safetensors, NAME.ref.json
    (inputs and PyTorch's outputs, and the same with NaN and infinities
    among the inputs); compiled in every configuration."""
    bad = 0
    cases = []
    for d in args.replay:
        cases += sorted(os.path.join(d, f[:-5]) for f in os.listdir(d) if f.endswith(".yaml"))
    if not cases:
        log("difftest: no regression cases")
        return 1
    for base in cases:
        bad += replay_case(args, base)
    log(f"difftest: {len(cases)} regressions, {bad} failures")
    return 1 if bad else 0


def replay_case(args, base):
    name = os.path.basename(base)
    work = os.path.join(args.work, "replay-" + name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(base + ".ref.json") as f:
        ref = json.load(f)
    shutil.copy(base + ".yaml", os.path.join(work, "net.yaml"))
    shutil.copy(base + ".safetensors", os.path.join(work, "net.safetensors"))
    meta = {"inputs": ref["inputs_meta"], "outputs": ref["outputs_meta"], "batch": ref["batch"]}
    for suffix, key in (("", ""), (".nonfinite", "_nonfinite")):
        for k, i in enumerate(ref["inputs_meta"]):
            np.array(ref["inputs" + key][i["name"]], np.float32).tofile(
                os.path.join(work, f"in{k}{suffix}.f32"))
        for k, o in enumerate(ref["outputs_meta"]):
            np.array(ref["outputs" + key][o["name"]], np.float64).tofile(
                os.path.join(work, f"ref{k}{suffix}.f64"))
    bad = 0
    for cname, flags in CONFIGS:
        _, findings = run_config(args.build, work, meta, cname, flags)
        for f in findings:
            log(f"difftest: {name}: {cname}: {f['kind']}: {f['detail'][:400]}")
        bad += bool(findings)
    log(f"difftest: {name}: {len(CONFIGS) - bad} of {len(CONFIGS)} configurations agree")
    if not bad:
        shutil.rmtree(work, ignore_errors=True)
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--compiler", help="another build's cnncc and runtime (default: --build's)")
    ap.add_argument("--seeds", help="A-B, or a list: A,B,C-D")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--work", default="/tmp/cnncc-difftest")
    ap.add_argument("--out", default=None)
    ap.add_argument("--configs", nargs="*", help="only these configurations")
    ap.add_argument("--rotate", type=int, default=0, metavar="K",
                    help="only K configurations per seed, taking turns (long campaigns)")
    ap.add_argument("--small", action="store_true", help="the fuzzer's smaller networks")
    ap.add_argument("--keep", action="store_true", help="keep every case directory")
    ap.add_argument("--replay", nargs="*")
    ap.add_argument("--no-concurrent", action="store_true",
                    help="no two host threads on one model (older runtimes)")
    args = ap.parse_args()
    global NO_CONCURRENT
    NO_CONCURRENT = args.no_concurrent
    args.build = os.path.abspath(args.build)
    args.work = os.path.abspath(args.work)
    args.out = os.path.abspath(args.out or args.work)
    os.makedirs(args.work, exist_ok=True)
    args.build = snapshot(args.build, args.work, args.compiler and os.path.abspath(args.compiler))
    if args.replay:
        return replay(args)
    if not args.seeds:
        ap.error("--seeds A-B or --replay DIR")
    import torch
    torch.set_num_threads(1)
    return campaign(args)


if __name__ == "__main__":
    sys.exit(main())
