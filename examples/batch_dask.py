#!/usr/bin/python3
"""batch_dask.py: classify a large set of inputs with a cnncc .so on a Dask
cluster, one loaded model per worker process.

    /usr/bin/python3 examples/batch_dask.py MODEL.so --generate 5000 [--workers 2]
    /usr/bin/python3 examples/batch_dask.py MODEL.so --folder DIR [--scheduler tcp://host:8786]

The inputs: --folder DIR, every DIR/*.npy in name order, each one sample
(the model's input shape without the batch, e.g. [3, 224, 224]) or a
batch of them ([N, 3, 224, 224]); or --generate N, N seeded pseudo-random
samples, each task making its own (nothing to ship). The work goes out in
tasks of --chunk samples (files are read by the worker that runs the task:
a cluster shares a filesystem or an object store; only names travel).

The cluster: a LocalCluster of --workers processes on this machine, or an
existing one (--scheduler ADDRESS: `dask scheduler` and `dask worker`
on each machine). Each worker process loads the model once, when it
joins (a WorkerPlugin, ModelPlugin below), and every task on that worker
uses that model; the plugin closes it when the worker leaves. Every
worker runs one task at a time (nthreads=1) with --threads model threads
(default: this machine's cores / workers, so workers x threads <= cores;
docs/deploy.md).

Results come back in input order: the top-1 class of every sample, and,
with --out FILE.npy, all outputs. --check also classifies every sample in
this process with one model and exits 1 unless every output is the same,
bit for bit. Prints the throughput (samples/s over the cluster's wall
time, the first task's model loading included).
"""
import argparse
import glob
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import cnncc
except ImportError:  # a source tree without the package on the path
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))
    import cnncc

PLUGIN = "cnncc-model"


class ModelPlugin:
    """Loads the model once per worker process (setup, when the worker
    starts or the plugin is registered) and closes it (teardown). Tasks find
    it with get_worker().plugins[PLUGIN].model."""

    name = PLUGIN

    def __init__(self, so, threads, package_dir):
        self.so, self.threads, self.package_dir = so, threads, package_dir
        self.model, self.loads, self.tasks = None, 0, 0

    def setup(self, worker):
        if self.package_dir not in sys.path:  # workers start fresh interpreters
            sys.path.insert(0, self.package_dir)
        import cnncc as c
        self.model = c.load(self.so, threads=self.threads)
        self.loads += 1

    def teardown(self, worker):
        if self.model is not None:
            self.model.close()
            self.model = None

    def transition(self, key, start, finish, **kwargs):
        pass


def _plugin_class():
    """ModelPlugin as a distributed.WorkerPlugin (imported late: the module
    docstring and --help work without dask)."""
    from distributed import WorkerPlugin

    class Plugin(ModelPlugin, WorkerPlugin):
        pass
    return Plugin


def the_model():
    """In a task: this worker's model and plugin."""
    from distributed import get_worker
    p = get_worker().plugins[PLUGIN]
    p.tasks += 1
    return p.model, p


def make_samples(start, count, shape, seed):
    """Samples start .. start+count-1 of the generated set: each from its own
    seed, so any worker makes the same sample."""
    return np.stack([np.random.default_rng([seed, i]).standard_normal(shape, dtype=np.float32)
                     for i in range(start, start + count)])


def read_samples(files, shape):
    """The samples of a list of (file, first, count): rows of .npy files."""
    parts = []
    for path, first, count in files:
        a = np.load(path, mmap_mode="r")
        a = a[None] if a.shape == tuple(shape) else a
        parts.append(np.asarray(a[first:first + count], dtype=np.float32))
    return np.concatenate(parts)


def run_task(task):
    """One task on a worker: its samples through the worker's model.
    Returns (task index, outputs of the first output, worker pid)."""
    model, _ = the_model()
    kind, index, arg, shape, seed = task
    x = make_samples(arg[0], arg[1], shape, seed) if kind == "gen" else read_samples(arg, shape)
    return index, model(x), os.getpid()


def plan_folder(folder, shape, chunk):
    """Tasks of `chunk` samples over the .npy files of folder, in name order."""
    rows = []
    for path in sorted(glob.glob(os.path.join(folder, "*.npy"))):
        a = np.load(path, mmap_mode="r")
        if a.shape == tuple(shape):
            rows.append((path, 0, 1))
        elif a.ndim == len(shape) + 1 and a.shape[1:] == tuple(shape):
            rows += [(path, i, 1) for i in range(a.shape[0])]
        else:
            raise SystemExit(f"batch_dask.py: {path}: shape {a.shape}, the model takes {shape} "
                             f"or [N, {', '.join(map(str, shape))}]")
    if not rows:
        raise SystemExit(f"batch_dask.py: no .npy files in {folder}")
    tasks = []
    for t, k in enumerate(range(0, len(rows), chunk)):
        merged = []  # consecutive rows of one file as one slice
        for path, i, n in rows[k:k + chunk]:
            if merged and merged[-1][0] == path and merged[-1][1] + merged[-1][2] == i:
                merged[-1] = (path, merged[-1][1], merged[-1][2] + n)
            else:
                merged.append((path, i, n))
        tasks.append(("files", t, merged, shape, 0))
    return tasks, len(rows)


def plan_generated(n, shape, chunk, seed):
    return [("gen", t, (k, min(chunk, n - k)), shape, seed)
            for t, k in enumerate(range(0, n, chunk))], n


def classify(so, tasks, workers=2, threads=None, scheduler=None):
    """Runs the tasks on a cluster; returns (outputs in input order, wall
    seconds, {worker pid: tasks}, {worker address: model loads})."""
    from distributed import Client, LocalCluster
    cores = len(os.sched_getaffinity(0))
    if threads is None:
        threads = max(1, cores // workers)
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        t0 = time.perf_counter()
        pkg = os.path.dirname(os.path.dirname(os.path.abspath(cnncc.__file__)))
        client.register_worker_plugin(_plugin_class()(os.path.abspath(so), threads, pkg),
                                      name=PLUGIN)
        futures = client.map(run_task, tasks, pure=False)
        done = client.gather(futures)  # in the order of futures: the input order
        wall = time.perf_counter() - t0
        loads = client.run(lambda dask_worker: dask_worker.plugins[PLUGIN].loads)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    assert [d[0] for d in done] == list(range(len(tasks)))
    per_pid = {}
    for _, _, pid in done:
        per_pid[pid] = per_pid.get(pid, 0) + 1
    return np.concatenate([d[1] for d in done]), wall, per_pid, loads


def classify_here(so, tasks, threads=None):
    """The same tasks in this process, on one model: the reference."""
    with cnncc.load(so, threads=threads) as m:
        outs = []
        for kind, _, arg, shape, seed in tasks:
            x = make_samples(arg[0], arg[1], shape, seed) if kind == "gen" else \
                read_samples(arg, shape)
            outs.append(m(x))
    return np.concatenate(outs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--folder", help="classify DIR/*.npy")
    src.add_argument("--generate", type=int, metavar="N", help="N seeded random samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    ap.add_argument("--threads", type=int, default=None, help="model threads per worker")
    ap.add_argument("--chunk", type=int, default=64, help="samples per task")
    ap.add_argument("--scheduler", help="an existing cluster's scheduler address")
    ap.add_argument("--out", help="save all outputs (first output) to this .npy")
    ap.add_argument("--check", action="store_true",
                    help="compare with a run in this process, bit for bit")
    a = ap.parse_args()

    with cnncc.load(a.model, threads=1) as m:
        info = m.info
    shape = info["inputs"][0]["shape"][1:]
    if len(info["inputs"]) != 1:
        raise SystemExit("batch_dask.py: this example feeds models with one input")
    if a.folder:
        tasks, n = plan_folder(a.folder, shape, a.chunk)
    else:
        tasks, n = plan_generated(a.generate, shape, a.chunk, a.seed)
    where = a.scheduler or f"a LocalCluster of {a.workers} worker processes"
    print(f"batch_dask: {info['name']} ({a.model}): {n} samples in {len(tasks)} tasks of up to "
          f"{a.chunk}, on {where}")
    y, wall, per_pid, loads = classify(a.model, tasks, a.workers, a.threads, a.scheduler)
    top1 = y.reshape(len(y), -1).argmax(axis=1)
    print(f"batch_dask: {n} samples in {wall:.2f} s: {n / wall:.1f} samples/s "
          f"({len(per_pid)} worker processes ran tasks: "
          f"{', '.join(str(v) for v in sorted(per_pid.values(), reverse=True))}; model loads "
          f"per worker: {', '.join(str(v) for v in loads.values())})")
    print(f"batch_dask: top-1 classes of the first 10: {top1[:10].tolist()}")
    if a.out:
        np.save(a.out, y)
        print(f"batch_dask: wrote {a.out} ({y.shape})")
    if a.check:
        t0 = time.perf_counter()
        ref = classify_here(a.model, tasks, a.threads)
        t1 = time.perf_counter() - t0
        same = ref.shape == y.shape and np.array_equal(ref, y)
        print(f"batch_dask: one process, one model: {t1:.2f} s ({n / t1:.1f} samples/s); "
              f"{'every output is the same' if same else 'OUTPUTS DIFFER'}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
