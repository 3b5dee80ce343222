#!/usr/bin/python3
"""PyTorch engine of the benchmark (Debian python3-torch 1.13, /usr/bin/python3).

    /usr/bin/python3 bench/torch_bench.py NETWORK PREPDIR [--threads N] [--batch N]
                     [--runs N] [--warmup N] [--output FILE] [--serve]

Loads the model of NETWORK with the weights PREPDIR/weights.safetensors (see
prepare.py), sets torch.set_num_threads(N) and one inter-op thread, and makes
the fast inference form: torch.jit.optimize_for_inference(torch.jit.freeze(
torch.jit.trace(model, x))) (oneDNN/MKLDNN where it applies). Runs under
torch.inference_mode() on PREPDIR/input.bin, --warmup untimed runs (default 3;
the profiling executor specializes the graph during the first runs), then
speaks bench_host.c's protocol (--batch N: N copies of the input per call,
times per image, the first image's output written): "BENCH result {...}" without --serve, or
"BENCH ready {...}" and answers "run K" / "quit" lines with "BENCH times ...".
"""

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("network")
    ap.add_argument("prepdir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--output")
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()

    t_load = time.perf_counter()
    import torch
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    import prepare

    with open(os.path.join(args.prepdir, "manifest.json")) as f:
        manifest = json.load(f)
    model, shape = prepare.load_model(args.network,
                                      os.path.join(args.prepdir, manifest["weights"]))
    x = torch.from_file(os.path.join(args.prepdir, manifest["input"]), size=1 * _numel(shape),
                        dtype=torch.float32).reshape(1, *shape)
    if args.batch > 1:
        x = x.expand(args.batch, *shape).contiguous()
    with torch.no_grad():
        fast = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
    load_ms = (time.perf_counter() - t_load) * 1e3

    def timed(n):
        out, ms = None, []
        with torch.inference_mode():
            for _ in range(n):
                t0 = time.perf_counter()
                out = fast(x)
                ms.append((time.perf_counter() - t0) * 1e3 / args.batch)
        return out, ms

    y, ms = timed(args.warmup)
    if args.output:
        y[:1].detach().contiguous().numpy().astype("<f4").tofile(args.output)

    info = {"engine": "pytorch", "model": args.network,
            "compiler": f"torch {torch.__version__} jit.freeze+optimize_for_inference",
            "threads": args.threads, "batch": args.batch, "load_ms": load_ms, "first_run_ms": ms[0],
            "warmup": args.warmup}
    if not args.serve:
        _, ms = timed(args.runs)
        info.update(runs=args.runs, times_ms=ms, median_ms=sorted(ms)[len(ms) // 2],
                    min_ms=min(ms))
    info["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(("BENCH ready " if args.serve else "BENCH result ") + json.dumps(info), flush=True)

    if args.serve:
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            if words[0] != "run" or len(words) != 2 or int(words[1]) < 1:
                print(f"torch_bench: bad command: {line.strip()}", file=sys.stderr)
                return 1
            _, ms = timed(int(words[1]))
            print("BENCH times " + " ".join(f"{t:.4f}" for t in ms), flush=True)
    return 0


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


if __name__ == "__main__":
    sys.exit(main())
