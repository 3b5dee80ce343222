#!/usr/bin/python3
"""cnncc's benchmark: cnncc vs ONNX Runtime vs PyTorch, side by side.

Run through bench/run.sh (see bench/README.md):

    bench/run.sh [--quick] [--smoke] [--nets a,b] [--threads 1,2] [--batch 1,8]
                 [--runs 20] [--rounds 4] [--warmup 3] [--engines cnncc,ort,pytorch]
                 [--json FILE] [--regen] [--target-cpus native,x86-64-v3,x86-64-v2]
                 [--precision fp32,bf16,int8]

For each network (examples/NET.yaml), thread count and batch size (default 1;
at batch N > 1 every time is per image: the call's time / N; the ONNX export
has a dynamic batch axis, so ORT runs every batch):
  1. prepare.py makes the shared data once (seeded weights as safetensors,
     the ONNX export of the same model, one input, PyTorch's eager output);
  2. cnncc compiles the spec with --weights (wall time and peak RSS of the
     compiler process are recorded);
  3. the three engines are started as servers (bench_host, ort_bench.js,
     torch_bench.py), each loads its model and does --warmup untimed runs;
     a fourth, opt-in engine `cnncc-onnx` is cnncc's .so compiled from the
     same model.onnx by the ONNX frontend (columns "cnncc(ONNX) ms" and
     "ONNX/spec": the import's latency against the spec's, side by side);
     another, `cnncc-bf16`, is the spec compiled with --precision=bf16
     (columns "bf16 ms", "bf16/fp32", "bf16/ORT", "bf16 err", "bf16 RSS MB";
     its output is noted only past bf16's bound, 2e-2 * max|ref|);
     and `cnncc-int8`, the spec compiled with --precision=int8, calibrated
     on the bench's own input (speed only: its error column is not the
     accuracy measure of docs/precision.md; noted past 0.25 * max|ref|).
     --precision fp32,bf16,int8 is a shorthand that adds these engines;
  4. round-robin: for each of --rounds rounds, cnncc, then ORT, then PyTorch
     each time ceil(runs/rounds) runs; the result per engine is the median of
     all its timed runs (at least --runs). Interleaving spreads the machine's
     noise (other jobs, frequency changes) over the engines alike;
  5. each engine's output for the common input is compared with PyTorch's
     eager output, and each process's peak RSS is taken from wait4().
With --target-cpus, cnncc alone runs, once per CPU level: each network is
compiled with --target-cpu=CPU ("native": the host's) and the .so files are
timed side by side in the same interleaved rounds; the table gives each
one's median, compile time, and its ratio to the CPU before it.
The FMA peak (bench/peak.c) is measured at the start of the same run and
gives the "% of peak" columns. This script uses only the standard library;
PyTorch is needed by prepare.py and torch_bench.py, not here.
"""

import argparse
import datetime
import json
import math
import os
import platform
import select
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NETS = ["resnet50", "googlenet", "vgg16", "densenet121", "squeezenet1_0", "alexnet",
        "resnext50_32x4d", "resnet152", "inception_v4"]
# `--nets modern`: the mobile and efficient networks of issue 13, whose goal
# is cnncc/ORT <= 0.8 at 1 and 2 threads (docs/performance.md).
GROUPS = {"classic": NETS,
          "modern": ["mobilenet_v2", "efficientnet_b0", "mobilenet_v3_large",
                     "shufflenet_v2_x1_0", "regnet_y_400mf", "convnext_tiny"]}
# cnncc-onnx: the same network compiled by cnncc from prepare.py's model.onnx
# (the ONNX frontend) instead of the spec; opt-in (--engines cnncc,cnncc-onnx).
# cnncc-bf16: the spec compiled with --precision=bf16 (docs/precision.md); opt-in
# (--engines cnncc,cnncc-bf16,ort).
# cnncc-int8: the spec compiled with --precision=int8, calibrated on the input.
# cnncc-nopad: the spec compiled with -O2's passes but pad-channels (opt-in,
# --engines cnncc,cnncc-nopad: what the pass gains; in --json, not the table).
ENGINES = ["cnncc", "ort", "pytorch", "cnncc-onnx", "cnncc-bf16", "cnncc-int8", "cnncc-nopad"]
LABEL = {"cnncc": "cnncc", "ort": "ORT", "pytorch": "PyTorch", "cnncc-onnx": "cnncc (ONNX)",
         "cnncc-bf16": "cnncc bf16", "cnncc-int8": "cnncc int8",
         "cnncc-nopad": "cnncc without pad-channels"}
NOPAD_PASSES = "fuse-bn,fold-linear,fuse-epilogue,fold-shuffle,fold-1x1,layout,concat-elim,plan-memory"
# The precision variants: engine -> (column prefix, the error noted past).
VARIANTS = {"cnncc-bf16": ("bf16", 2e-2), "cnncc-int8": ("int8", 0.25)}


def label(e):
    """An engine's name: cnncc, ORT, PyTorch, cnncc (ONNX), cnncc bf16, or
    cnncc@CPU (--target-cpus)."""
    return LABEL.get(e, e)
NO_MODEL = 3  # prepare.py's exit status when PyTorch has no such model
SETTLE_S = 0.1  # pause between engines: lets the previous one's threads stop spinning
REPLY_TIMEOUT_S = 3600.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def run_measured(cmd, log_path, env=None, cwd=None):
    """Runs cmd to completion; (exit status, wall seconds, peak RSS in KiB).
    stdout+stderr go to log_path. The RSS is the child's own (wait4)."""
    with open(log_path, "w") as logf:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, ru.ru_maxrss


def cpu_busy_s():
    """CPU seconds all processes of the machine have used so far (/proc/stat:
    user, nice, system, irq, softirq and steal of all CPUs)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit_s, threshold=0.15, sample_s=2.0):
    """Waits (at most limit_s) until other processes use less than threshold of
    the machine's CPUs over a sample_s window. Returns the last share seen."""
    deadline, share = time.monotonic() + limit_s, None
    while True:
        b0, t0 = cpu_busy_s(), time.monotonic()
        time.sleep(sample_s)
        b1, t1 = cpu_busy_s(), time.monotonic()
        if b0 is None or b1 is None:
            return None
        share = (b1 - b0) / ((t1 - t0) * (os.cpu_count() or 1))
        if share < threshold or time.monotonic() >= deadline:
            return share
        log(f"  machine busy ({100 * share:.0f}% of the CPUs), waiting ...")


def tail(path, n=6):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
        return "\n".join("    " + l for l in lines[-n:])
    except OSError:
        return ""


class Engine:
    """One engine process speaking the BENCH protocol (see bench_host.c)."""

    def __init__(self, name, cmd, log_path, env=None):
        self.name, self.cmd, self.log_path = name, cmd, log_path
        self.logf = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.logf, env=env, text=True, bufsize=1)
        self.times, self.info, self.max_rss_kb, self.cpu_s = [], None, None, 0.0

    def _reply(self, prefix):
        """The next protocol line starting with prefix; other output is logged."""
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise BenchError(f"{self.name}: no answer within {REPLY_TIMEOUT_S:.0f} s")
            line = self.proc.stdout.readline()
            if not line:
                raise BenchError(f"{self.name}: the process exited "
                                 f"(status {self.proc.wait()}); log {self.log_path}:\n"
                                 + tail(self.log_path))
            if line.startswith("BENCH " + prefix + " "):
                return line[len("BENCH " + prefix) + 1:].strip()
            self.logf.write(line)

    def ready(self):
        self.info = json.loads(self._reply("ready"))
        return self.info

    def run(self, k):
        self.proc.stdin.write(f"run {k}\n")
        self.proc.stdin.flush()
        ts = [float(t) for t in self._reply("times").split()]
        if len(ts) != k:
            raise BenchError(f"{self.name}: asked for {k} runs, got {len(ts)}")
        self.times.extend(ts)

    def close(self):
        """Ends the process; records its peak RSS (KiB) from wait4."""
        if self.proc.returncode is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                _, status, ru = os.wait4(self.proc.pid, 0)
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.max_rss_kb = ru.ru_maxrss
                self.cpu_s = ru.ru_utime + ru.ru_stime
            except ChildProcessError:
                pass
        self.proc.stdout.close()
        self.logf.close()

    def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
        self.close()


def summary_macs(args, spec):
    """MACs per sample from `cnncc --summary` (when no .so could be loaded)."""
    import re
    try:
        r = subprocess.run([args.cnncc, "--summary", spec], capture_output=True, text=True,
                           timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"MACs:\s*(\d+)", r.stdout)
    return int(m.group(1)) if m else None


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])


def read_f32(path):
    import array
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return a


def rel_err(path, ref):
    """max|y - ref| / max|ref| (None if the file is missing or the size differs)."""
    try:
        y = read_f32(path)
    except OSError:
        return None
    if len(y) != len(ref):
        return float("inf")
    scale = max((abs(v) for v in ref), default=0.0) or 1.0
    return max((abs(a - b) for a, b in zip(y, ref)), default=0.0) / scale


def find_python():
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def build_tools(args):
    """bench_host and peak: prebuilt in $BENCH_BIN (CMake), else make them."""
    bindir = os.environ.get("BENCH_BIN")
    if not bindir:
        bindir = os.path.join(args.work, "bin")
        r = subprocess.run(["make", "-s", "-C", HERE, f"OUT={bindir}"],
                           stdout=sys.stderr)
        if r.returncode != 0:
            raise BenchError("could not build bench_host and peak (make -C bench)")
    tools = {"bench_host": os.path.join(bindir, "bench_host"),
             "peak": os.path.join(bindir, "bench_peak")}
    for t in tools.values():
        if not os.access(t, os.X_OK):
            raise BenchError(f"{t} is missing")
    # The bf16 / VNNI / AMX peaks (peak_bf16.c): optional, for --precision.
    tools["peak_bf16"] = os.path.join(bindir, "bench_peak_bf16")
    return tools


def measure_peak_x(tools, trials):
    """One thread's peaks of the instructions the bf16 and int8 kernels use
    (bench_peak_bf16: vdpbf16ps, vpdpbusd, AMX tdpbf16ps / tdpbusd), or {}
    where the tool is missing or the CPU has no AVX512_BF16."""
    if not os.access(tools["peak_bf16"], os.X_OK):
        log(f"bench: {tools['peak_bf16']} is missing: no bf16/int8 peak")
        return {}
    r = subprocess.run([tools["peak_bf16"], "--trials", str(trials)],
                       capture_output=True, text=True)
    try:
        d = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        log("bench: the bf16/int8 peak measurement failed: " + r.stderr.strip())
        return {}
    # The instruction each variant's kernels run: AMX where the CPU has it.
    out = {"bf16": d.get("amx_bf16_gflops") or d.get("bf16_gflops"),
           "int8": d.get("amx_int8_gops") or d.get("vnni_gops"), "raw": d}
    return {k: v for k, v in out.items() if v}


def measure_peak(tools, threads, seconds, trials):
    r = subprocess.run([tools["peak"], "--threads", ",".join(map(str, threads)),
                        "--seconds", str(seconds), "--trials", str(trials)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError("peak failed: " + r.stderr.strip())
    out = {}
    for line in r.stdout.splitlines():
        d = json.loads(line)
        out[d["threads"]] = d
    return out


def measure_bandwidth(tools, threads, trials):
    """{threads: {"read": GB/s, "copy": ..., "mb8_read": ..., "l2_read": ...}}
    (bench_peak --memory: see peak.c), or {} when it fails."""
    r = subprocess.run([tools["peak"], "--threads", ",".join(map(str, threads)),
                        "--memory", "256", "--trials", str(trials)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log("bench: the bandwidth measurement failed: " + r.stderr.strip())
        return {}
    return {d["threads"]: d for d in map(json.loads, r.stdout.splitlines())}


def ort_status(args):
    """None if ORT can run, else the reason it is skipped."""
    if "ort" not in args.engines:
        return "not requested"
    if not shutil.which("node"):
        return "skipped: node not found"
    if not os.path.isdir(os.path.join(args.ort_dir, "node_modules", "onnxruntime-node")):
        return "skipped: onnxruntime-node not installed (bench/run.sh --install-ort)"
    return None


def ort_version(args):
    try:
        with open(os.path.join(args.ort_dir, "node_modules", "onnxruntime-node",
                               "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def compile_cnncc(net, args, spec, d, weights, logs, peer, notes):
    """Compiles NET's .so, or one per --target-cpus level (engines cnncc@CPU).
    Returns (engines, {engine: .so}, compile info); a failed compile marks
    the engine in peer and adds a note."""
    engs = ENGINES
    sos = {"cnncc": os.path.join(d, f"{net}.so")}
    if args.target_cpus:
        engs = [f"cnncc@{cpu}" for cpu in args.target_cpus]
        sos = {e: os.path.join(d, f"{net}-{cpu}.so") for e, cpu in zip(engs, args.target_cpus)}
    compile_info = {}
    for e, so in sos.items():
        if "cnncc" not in args.engines or "cnncc" in peer:  # peer: e.g. no spec
            break
        cmd = [args.cnncc, spec, "-o", so]
        cpu = e.partition("@")[2]
        if cpu and cpu != "native":
            cmd.append(f"--target-cpu={cpu}")
        if weights:
            cmd += ["--weights", weights]
        log(f"[{net}] compiling: {' '.join(cmd)}")
        if os.path.exists(so):
            os.unlink(so)
        logf = os.path.join(logs, f"{net}-{e}.log".replace("@", "-"))
        st, wall, rss = run_measured(cmd, logf)
        info = {"compile_s": wall, "compile_rss_kb": rss, "status": st}
        if e == "cnncc":
            compile_info = info
        else:
            compile_info.setdefault("by_engine", {})[e] = info
            compile_info["status"] = max(compile_info.get("status", 0), st)
        if st != 0:
            peer[e] = "compile failed"
            notes.append(f"{net}: cnncc failed (status {st}), see {logf}\n" + tail(logf))
    return engs, sos, compile_info


def compile_variant(args, net, engine, src, so, key, logs, peer, notes, compile_info):
    """cnncc SRC... -o SO for an opt-in engine; its time in compile_info[KEY_compile_s]."""
    cmd = [args.cnncc] + src + ["-o", so]
    log(f"[{net}] compiling: {' '.join(cmd)}")
    if os.path.exists(so):
        os.unlink(so)
    logf = os.path.join(logs, f"{net}-{engine}.log")
    st, wall, _ = run_measured(cmd, logf)
    compile_info.update({f"{key}_compile_s": wall, f"{key}_status": st})
    if st != 0:
        peer[engine] = "compile failed"
        notes.append(f"{net}: {engine}: cnncc failed (status {st}), see {logf}\n"
                     + tail(logf))


def bench_net(net, args, tools, peak, ort_skip, py):
    """All rows of one network (one per thread count) as dicts."""
    spec = os.path.join(args.specs, f"{net}.yaml")
    base = {"net": net}
    have_spec = os.path.exists(spec)
    if not have_spec and "cnncc-onnx" not in args.engines:
        return [dict(base, na="n/a: no spec yet")]
    d = os.path.join(args.work, "data", net)
    logs = os.path.join(args.work, "logs")
    os.makedirs(d, exist_ok=True)
    os.makedirs(logs, exist_ok=True)
    notes = []

    # 1. Shared weights, ONNX model, input and reference output.
    peer = {}  # engine -> reason it does not run (absent: it runs)
    prep_cmd = [py, os.path.join(HERE, "prepare.py"), net, d]
    if args.regen:
        prep_cmd.append("--force")
    if ort_skip and "pytorch" in args.engines and "cnncc-onnx" not in args.engines:
        prep_cmd.append("--no-onnx")
    have_prep = False
    log(f"[{net}] preparing weights and input ...")
    st, _, _ = run_measured(prep_cmd, os.path.join(logs, f"{net}-prepare.log"))
    if st == 0:
        have_prep = True
    elif st == NO_MODEL:
        peer["ort"] = peer["pytorch"] = "n/a (no PyTorch model)"
        notes.append(f"{net}: no PyTorch/ONNX model (not in torchvision "
                     f"nor tests/e2e/make_ref.py); cnncc uses its own weights")
    else:
        peer["ort"] = peer["pytorch"] = "failed (prepare.py)"
        notes.append(f"{net}: prepare.py failed, see {logs}/{net}-prepare.log\n"
                     + tail(os.path.join(logs, f"{net}-prepare.log")))
    manifest = {}
    if have_prep:
        with open(os.path.join(d, "manifest.json")) as f:
            manifest = json.load(f)
        if not manifest.get("onnx"):
            peer.setdefault("ort", "n/a (no ONNX export)")
            peer.setdefault("cnncc-onnx", "n/a (no ONNX export)")
    elif "cnncc-onnx" in args.engines:
        peer["cnncc-onnx"] = peer.get("ort", "n/a (no ONNX export)")
    for e in ENGINES:
        if e not in args.engines:
            peer[e] = "not requested"
    if ort_skip:
        peer["ort"] = ort_skip
    if not have_spec:  # still benched from its ONNX export (cnncc-onnx)
        peer.setdefault("cnncc", "n/a (no spec yet)")

    # 2. Compile (once per --target-cpus level: engines cnncc@CPU).
    weights = os.path.join(d, manifest["weights"]) if have_prep else None
    engs, sos, compile_info = compile_cnncc(net, args, spec, d, weights, logs, peer, notes)
    # The opt-in variants: the same network from its ONNX export, and the spec
    # with --precision=bf16.
    so_onnx = os.path.join(d, f"{net}-onnx.so")
    so_bf16 = os.path.join(d, f"{net}-bf16.so")
    so_int8 = os.path.join(d, f"{net}-int8.so")
    if "cnncc-onnx" not in peer:
        compile_variant(args, net, "cnncc-onnx", [os.path.join(d, manifest["onnx"])], so_onnx,
                        "onnx", logs, peer, notes, compile_info)
    if "cnncc-bf16" not in peer:
        src = [spec, "--precision=bf16"] + (["--weights", weights] if have_prep else [])
        compile_variant(args, net, "cnncc-bf16", src, so_bf16, "bf16", logs, peer, notes,
                        compile_info)
    if "cnncc-int8" not in peer and not have_prep:
        peer["cnncc-int8"] = "n/a (no input to calibrate on)"
    if "cnncc-int8" not in peer:
        src = [spec, "--precision=int8", "--weights", weights,
               "--calibrate", os.path.join(d, manifest["input"])]
        compile_variant(args, net, "cnncc-int8", src, so_int8, "int8", logs, peer, notes,
                        compile_info)
    so_nopad = os.path.join(d, f"{net}-nopad.so")
    if "cnncc-nopad" not in peer:
        src = [spec, "--passes=" + NOPAD_PASSES] + (["--weights", weights] if have_prep else [])
        compile_variant(args, net, "cnncc-nopad", src, so_nopad, "nopad", logs, peer, notes,
                        compile_info)
    ref = read_f32(os.path.join(d, manifest["output"])) if have_prep else None
    dynamic = bool((manifest.get("onnx_export") or {}).get("dynamic_batch"))

    rows = []
    for nt, nb in [(t, b) for b in args.batch for t in args.threads]:
        row = dict(base, threads=nt, batch=nb, compile=compile_info, engines={})
        runners, ours = {}, 0.0
        if args.wait_quiet > 0:
            wait_quiet(args.wait_quiet)
        busy0, wall0 = cpu_busy_s(), time.monotonic()
        try:
            for e in engs:
                if e in peer:
                    row["engines"][e] = {"skip": peer[e]}
                    continue
                if e == "ort" and nb > 1 and not dynamic:
                    row["engines"][e] = {"skip": "n/a (batch-1 ONNX export; --regen)"}
                    continue
                out = os.path.join(d, f"out-{e}-t{nt}-b{nb}.bin")
                if os.path.exists(out):
                    os.unlink(out)
                common = ["--threads", str(nt), "--warmup", str(args.warmup), "--serve",
                          "--output", out] + (["--batch", str(nb)] if nb > 1 else [])
                if e in sos or e in ("cnncc-onnx", "cnncc-bf16", "cnncc-int8", "cnncc-nopad"):
                    lib = sos[e] if e in sos else {"cnncc-onnx": so_onnx, "cnncc-bf16": so_bf16,
                                                   "cnncc-int8": so_int8,
                                                   "cnncc-nopad": so_nopad}[e]
                    cmd = [tools["bench_host"], lib] + common
                    if have_prep:
                        cmd += ["--input", os.path.join(d, manifest["input"])]
                elif e == "ort":
                    cmd = ["node", os.path.join(HERE, "ort_bench.js"),
                           os.path.join(d, manifest["onnx"]),
                           os.path.join(d, manifest["input"])] + common
                else:
                    cmd = [py, os.path.join(HERE, "torch_bench.py"), net, d] + common
                tag = f"t={nt}" + (f" b={nb}" if nb > 1 else "")
                log(f"[{net} {tag}] starting {label(e)} ...")
                env = dict(os.environ, BENCH_ORT_DIR=args.ort_dir)
                eng = Engine(e, cmd, os.path.join(logs, f"{net}-t{nt}-b{nb}-{e}.log"), env)
                try:
                    eng.ready()
                    runners[e] = eng
                except BenchError as ex:
                    eng.kill()
                    row["engines"][e] = {"error": str(ex)}
                    notes.append(f"{net} {tag}: {label(e)} did not start: {ex}")
                row["engines"].setdefault(e, {})["out"] = out
            per = max(1, math.ceil(args.runs / args.rounds))
            rounds = max(1, math.ceil(args.runs / per))
            for r in range(rounds):
                for e in engs:
                    if e not in runners:
                        continue
                    try:
                        runners[e].run(per)
                    except BenchError as ex:
                        runners.pop(e).kill()
                        row["engines"][e]["error"] = str(ex)
                        notes.append(f"{net} t={nt} b={nb}: {label(e)} failed: {ex}")
                    time.sleep(SETTLE_S)
                log(f"[{net} t={nt} b={nb}] round {r + 1}/{rounds}: "
                    + ", ".join(f"{label(e)} {median(x.times):.2f} ms"
                                for e, x in runners.items() if x.times))
        finally:
            for e, eng in runners.items():
                eng.close()
                ours += eng.cpu_s
                rec = row["engines"][e]
                rec.update(info=eng.info, times_ms=eng.times,
                           median_ms=median(eng.times) if eng.times else None,
                           max_rss_kb=eng.max_rss_kb or (eng.info or {}).get("max_rss_kb"))
        # What other processes took from the machine meanwhile (noise gauge).
        busy1, wall1 = cpu_busy_s(), time.monotonic()
        if busy0 is not None and busy1 is not None and wall1 > wall0:
            other = (busy1 - busy0 - ours) / ((wall1 - wall0) * (os.cpu_count() or 1))
            row["other_cpu"] = min(1.0, max(0.0, other))
        for e, rec in row["engines"].items():
            if ref is not None and "out" in rec and os.path.exists(rec["out"]):
                rec["rel_err"] = rel_err(rec["out"], ref)
        info = (row["engines"].get(engs[0], {}).get("info")
                or row["engines"].get("cnncc-onnx", {}).get("info") or {})
        row["macs"] = info.get("macs") or (summary_macs(args, spec) if have_spec else None)
        rows.append(row)
    row0 = rows[0] if rows else None
    if row0 is not None:
        row0["notes"] = notes
    return rows


def fmt_ms(rec):
    if rec is None:
        return "-"
    if "skip" in rec:
        return "n/a" if rec["skip"].startswith("n/a") or rec["skip"] == "not requested" \
            else "skipped"
    if rec.get("median_ms") is None:
        return "FAILED"
    m = rec["median_ms"]
    return f"{m:.0f}" if m >= 100 else f"{m:.1f}" if m >= 10 else f"{m:.2f}" if m >= 1 \
        else f"{m:.3f}"


def ms_of(rec):
    return rec.get("median_ms") if rec else None


def table(rows, xpeak=None):
    head = ["network", "thr", "batch", "cnncc ms", "ORT ms", "PyTorch ms", "cnncc/ORT", "cnncc/PyT",
            "cnncc GFLOP/s", "cnncc %pk", "ORT %pk", "PyT %pk", "cnncc err",
            "compile s", "compile MB", "RSS MB cnncc/ORT/PyT", "other CPU"]
    with_onnx = any("median_ms" in (r.get("engines") or {}).get("cnncc-onnx", {}) for r in rows)
    if with_onnx:
        head += ["cnncc(ONNX) ms", "ONNX/spec"]
    variants = [e for e in VARIANTS
                if any("median_ms" in (r.get("engines") or {}).get(e, {}) for r in rows)]
    for e in variants:
        v = VARIANTS[e][0]
        head += [f"{v} ms", f"{v}/fp32", f"{v}/ORT", f"{v} err", f"{v} RSS MB",
                 f"{v} G{'FLOP' if v == 'bf16' else 'OP'}/s", f"{v} %pk"]
    out = []
    for row in rows:
        pk = row.get("peak_gflops")
        if "na" in row:
            out.append([row["net"], "", "", row["na"]] + [""] * (len(head) - 4))
            continue
        eng = row["engines"]
        c, o, p = (eng.get(e) for e in ("cnncc", "ort", "pytorch"))
        cm, om, pm = ms_of(c), ms_of(o), ms_of(p)
        macs = row.get("macs")

        def gf(ms):
            return 2.0 * macs / (ms * 1e6) if macs and ms else None

        def pct(ms):
            g = gf(ms)
            return f"{100 * g / pk:.1f}%" if g and pk else "-"

        def ratio(a, b):
            return f"{a / b:.2f}" if a and b else "-"

        err = (c or {}).get("rel_err")
        comp = row.get("compile") or {}
        rss = "/".join(f"{(r or {}).get('max_rss_kb') / 1024:.0f}"
                       if (r or {}).get("max_rss_kb") and "skip" not in (r or {}) else "-"
                       for r in (c, o, p))
        out.append([row["net"], str(row["threads"]), str(row.get("batch", 1)),
                    fmt_ms(c), fmt_ms(o), fmt_ms(p),
                    ratio(cm, om), ratio(cm, pm),
                    f"{gf(cm):.1f}" if gf(cm) else "-", pct(cm), pct(om), pct(pm),
                    f"{err:.1e}" if err is not None else "-",
                    f"{comp['compile_s']:.2f}" if "compile_s" in comp else "-",
                    f"{comp['compile_rss_kb'] / 1024:.0f}" if "compile_rss_kb" in comp else "-",
                    rss,
                    f"{100 * row['other_cpu']:.0f}%" if "other_cpu" in row else "-"])
        if with_onnx:
            x = eng.get("cnncc-onnx")
            out[-1] += [fmt_ms(x), ratio(ms_of(x), cm)]
        for e in variants:
            x = eng.get(e) or {}
            xe, xr = x.get("rel_err"), x.get("max_rss_kb")
            xg = gf(ms_of(x))
            xpk = (xpeak or {}).get(VARIANTS[e][0])
            out[-1] += [fmt_ms(x), ratio(ms_of(x), cm), ratio(ms_of(x), om),
                        f"{xe:.1e}" if xe is not None else "-",
                        f"{xr / 1024:.0f}" if xr and "skip" not in x else "-",
                        f"{xg:.1f}" if xg else "-",
                        f"{100 * xg / (xpk * row['threads']):.1f}%" if xg and xpk else "-"]
    widths = [max(len(head[i]), *(len(r[i]) for r in out)) if out else len(head[i])
              for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    lines = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [line(r) for r in out]
    return "\n".join(lines)


def table_cpus(rows, cpus):
    """--target-cpus: per network and thread count, each CPU level's median
    and compile time, and its ratio to the level before it (native,v3,v2:
    v3/native, v2/v3)."""
    engs = [f"cnncc@{c}" for c in cpus]
    head = ["network", "thr", "batch"] + [f"{c} ms" for c in cpus] + \
        [f"{c}/{p}" for p, c in zip(cpus, cpus[1:])] + [f"{c} compile s" for c in cpus] + \
        ["max err", "other CPU"]
    out = []
    for row in rows:
        if "na" in row:
            out.append([row["net"], "", "", row["na"]] + [""] * (len(head) - 4))
            continue
        eng = row["engines"]
        ms = [ms_of(eng.get(e)) for e in engs]
        comp = (row.get("compile") or {}).get("by_engine", {})
        errs = [eng.get(e, {}).get("rel_err") for e in engs]
        errs = [x for x in errs if x is not None]
        out.append([row["net"], str(row["threads"]), str(row.get("batch", 1))]
                   + [fmt_ms(eng.get(e)) for e in engs]
                   + [f"{m / p:.2f}" if m and p else "-" for p, m in zip(ms, ms[1:])]
                   + [f"{comp[e]['compile_s']:.2f}" if e in comp else "-" for e in engs]
                   + [f"{max(errs):.1e}" if errs else "-",
                      f"{100 * row['other_cpu']:.0f}%" if "other_cpu" in row else "-"])
    widths = [max(len(head[i]), *(len(r[i]) for r in out)) if out else len(head[i])
              for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in out])


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="resnet50,googlenet only (unless --nets), 2 rounds, short peak")
    ap.add_argument("--smoke", action="store_true",
                    help="LeNet-5, 1 thread, quick; exit 1 unless cnncc runs and agrees "
                         "with PyTorch (for ctest)")
    ap.add_argument("--nets", help="comma-separated networks or groups (%s; default: "
                                   "classic, the %d of the first table)"
                                   % (", ".join(GROUPS), len(NETS)))
    ap.add_argument("--threads", help="comma-separated thread counts (1,2; --smoke: 1)")
    ap.add_argument("--batch", help="comma-separated batch sizes (1); times are per image")
    ap.add_argument("--runs", type=int, default=20, help="timed runs per engine, at least (20)")
    ap.add_argument("--rounds", type=int, default=4,
                    help="round-robin rounds the runs are split into (4)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per engine (3)")
    ap.add_argument("--engines", default="cnncc,ort,pytorch")
    ap.add_argument("--precision", metavar="LIST",
                    help="fp32,bf16,int8: add the cnncc-bf16 / cnncc-int8 engines (fp32 is "
                         "cnncc itself, always run: the ratios need it)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--target-cpus", metavar="CPUS",
                    help="cnncc alone, compiled for each of these CPU levels (native: the "
                         "host's), timed side by side: native,x86-64-v3,x86-64-v2")
    ap.add_argument("--regen", action="store_true",
                    help="regenerate the weights/ONNX/input data (cached in the work dir)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                    help="before each row, wait up to S seconds for the other processes "
                         "to use < 15%% of the CPUs (default 0: do not wait)")
    ap.add_argument("--peak-seconds", type=float, default=0.2,
                    help="length of one trial of the FMA peak (0.2)")
    ap.add_argument("--peak-trials", type=int, default=10,
                    help="trials of the FMA peak; the best counts (10)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.nets = args.nets or "lenet5"
        args.threads = args.threads or "1"
        args.rounds, args.warmup = 2, 2
        args.peak_seconds, args.peak_trials = 0.1, 4
    if args.quick:
        args.nets = args.nets or "resnet50,googlenet"
        args.rounds, args.warmup = 2, 2
        args.peak_seconds, args.peak_trials = 0.1, 6
    args.nets = [n for g in (args.nets or "classic").split(",") for n in GROUPS.get(g, [g])]
    args.threads = [int(t) for t in (args.threads or "1,2").split(",")]
    args.batch = [int(b) for b in (args.batch or "1").split(",")]
    args.engines = args.engines.split(",")
    for p in (args.precision or "").split(","):
        if p in ("bf16", "int8") and f"cnncc-{p}" not in args.engines:
            args.engines.append(f"cnncc-{p}")
        elif p not in ("", "fp32", "bf16", "int8"):
            ap.error(f"--precision: unknown precision '{p}' (fp32, bf16, int8)")
    args.target_cpus = args.target_cpus.split(",") if args.target_cpus else None
    if args.target_cpus:
        args.engines = ["cnncc"]
    bad = [e for e in args.engines if e not in ENGINES]
    if bad or args.runs < 1 or args.rounds < 1 or args.warmup < 1 or min(args.threads) < 1 \
            or min(args.batch) < 1:
        ap.error(f"bad arguments (unknown engines: {bad})" if bad else "bad counts")
    args.build = os.path.abspath(os.environ.get("CNNCC_BUILD", os.path.join(ROOT, "build")))
    args.cnncc = os.path.join(args.build, "cnncc")
    args.specs = os.path.abspath(os.environ.get("BENCH_SPECS", os.path.join(ROOT, "examples")))
    args.work = os.path.abspath(os.environ.get("BENCH_WORK", os.path.join(HERE, ".work")))
    args.ort_dir = os.path.abspath(os.environ.get("BENCH_ORT_DIR", os.path.join(HERE, ".ort")))
    return args


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main(argv):
    args = parse_args(argv)
    t_start = time.perf_counter()
    if "cnncc" in args.engines and not os.access(args.cnncc, os.X_OK):
        log(f"bench: {args.cnncc} not found: build cnncc first, or set CNNCC_BUILD "
            f"to its build directory")
        return 2
    os.makedirs(args.work, exist_ok=True)
    try:
        tools = build_tools(args)
        log(f"measuring the FMA peak (threads {args.threads}) ...")
        peak = measure_peak(tools, args.threads, args.peak_seconds, args.peak_trials)
        xpeak = {}
        if any(e in VARIANTS for e in args.engines):
            log("measuring the bf16 and int8 peaks (one thread) ...")
            xpeak = measure_peak_x(tools, max(3, args.peak_trials // 2))
        log(f"measuring the memory bandwidth (threads {args.threads}) ...")
        bandwidth = measure_bandwidth(tools, args.threads, args.peak_trials)
    except BenchError as ex:
        log(f"bench: {ex}")
        return 2
    py = find_python()
    ort_skip = ort_status(args)

    rows = []
    for net in args.nets:
        try:
            rows += bench_net(net, args, tools, peak, ort_skip, py)
        except (BenchError, OSError, ValueError, KeyError) as ex:
            rows.append({"net": net, "na": f"FAILED: {ex}", "failed": True})

    # The machine is shared: measure the peak again and keep the better one.
    try:
        again = measure_peak(tools, args.threads, args.peak_seconds, args.peak_trials)
        for n, p in again.items():
            p0 = peak[n]
            p0["start_gflops"], p0["end_gflops"] = p0["gflops"], p["gflops"]
            if p["gflops"] > p0["gflops"]:
                p0.update(gflops=p["gflops"], median=p["median"])
    except BenchError as ex:
        log(f"bench: second peak measurement failed: {ex}")
    elapsed = time.perf_counter() - t_start
    ncpu = os.cpu_count()
    compiler = next((rec["info"]["compiler"] for r in rows
                     for rec in (r.get("engines") or {}).values() if (rec or {}).get("info")),
                    "cnncc")
    print(f"cnncc benchmark, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, "
          f"{cpu_name()}, {ncpu} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"engines: {compiler}; ONNX Runtime "
          f"{ort_version(args) if not ort_skip else '(' + ort_skip + ')'}; "
          f"PyTorch via {py}")
    print("FMA peak: " + ", ".join(
        f"{n} thread{'s' if n > 1 else ''} {p['gflops']:.0f} GFLOP/s" for n, p in peak.items())
        + f" ({next(iter(peak.values()))['isa']}; best of {args.peak_trials} trials at the start"
        + " and at the end: " + ", ".join(f"{p.get('start_gflops', 0):.0f}/{p.get('end_gflops', 0):.0f}"
                                        for p in peak.values()) + ")")
    if xpeak:
        raw = xpeak["raw"]
        amx = raw.get("amx_bf16_gflops")
        print("bf16/int8 peaks, 1 thread (the %pk columns: times the threads): "
              f"vdpbf16ps {raw.get('bf16_gflops') or '-'} GFLOP/s, vpdpbusd "
              f"{raw.get('vnni_gops') or '-'} GOP/s"
              + (f", AMX tdpbf16ps {amx} GFLOP/s, tdpbusd {raw.get('amx_int8_gops')} GOP/s "
                 "(the kernels' instruction here)" if amx else
                 " (no AMX: the kernels' instructions here)"))
    if bandwidth:
        print("memory bandwidth, GB/s read/write/copy, best of "
              f"{args.peak_trials} at the start: " + "; ".join(
                  f"{n} thread{'s' if n > 1 else ''}: 256 MB {b['read']:.0f}/{b['write']:.0f}/"
                  f"{b['copy']:.0f}, 8 MB {b['mb8_read']:.0f}/{b['mb8_write']:.0f}/"
                  f"{b['mb8_copy']:.0f}, L2 {b['l2_read']:.0f}/{b['l2_write']:.0f}/"
                  f"{b['l2_copy']:.0f}" for n, b in bandwidth.items()))
    print(f"batch {','.join(map(str, args.batch))} (ms per image), median of {max(1, math.ceil(args.runs / args.rounds)) * args.rounds}"
          f" runs per engine in {args.rounds} interleaved rounds after {args.warmup} warm-up"
          f" runs; ratios > 1: cnncc slower")
    for row in rows:
        if "threads" in row:
            row["peak_gflops"] = peak.get(row["threads"], {}).get("gflops")
    print()
    print(table_cpus(rows, args.target_cpus) if args.target_cpus else table(rows, xpeak))
    print()
    for row in rows:
        for n in row.get("notes", []):
            print("note: " + n)
        for e, rec in (row.get("engines") or {}).items():
            err = rec.get("rel_err")
            bound = VARIANTS[e][1] if e in VARIANTS else 1e-3  # docs/precision.md
            if err is not None and e != "pytorch" and err > bound:
                print(f"note: {row['net']} t={row['threads']} b={row.get('batch', 1)}: "
                      f"{label(e)} output differs "
                      f"from PyTorch's eager output: max rel err {err:.2e}")
    noisy = [f"{r['net']} t={r['threads']} b={r.get('batch', 1)}" for r in rows if r.get("other_cpu", 0) > 0.15]
    if noisy:
        print("note: other processes used more than 15% of the CPUs during "
              + ("every row" if len(noisy) == sum("threads" in r for r in rows)
                 else ", ".join(noisy))
              + ": those timings are disturbed (compare ratios, rerun, --wait-quiet)")
    if ort_skip and ort_skip != "not requested":
        print(f"note: ORT {ort_skip}")
    print(f"total time {elapsed:.0f} s")

    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "cpu": cpu_name(), "ncpu": ncpu, "peak": peak, "peak_bf16_int8": xpeak,
              "bandwidth": bandwidth, "args": {
                  k: v for k, v in vars(args).items()}, "rows": rows, "elapsed_s": elapsed}
    os.makedirs(os.path.join(args.work, "results"), exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for path in [os.path.join(args.work, "results", f"{stamp}.json")] + (
            [args.json] if args.json else []):
        with open(path, "w") as f:
            json.dump(result, f, indent=1, default=str)
            f.write("\n")

    failed = any(r.get("failed") for r in rows)
    for row in rows:
        for e, rec in (row.get("engines") or {}).items():
            if "error" in rec or ("skip" not in rec and rec.get("median_ms") is None):
                failed = True
        if (row.get("compile") or {}).get("status", 0) != 0:
            failed = True
    if args.smoke:
        c = rows[0].get("engines", {}).get("cnncc", {}) if rows else {}
        if c.get("median_ms") is None:
            log("smoke: cnncc produced no timing")
            return 1
        if c.get("rel_err") is not None and c["rel_err"] > 1e-3:
            log(f"smoke: cnncc's output differs from PyTorch's: {c['rel_err']:.2e}")
            return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
