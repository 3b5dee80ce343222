"""cnncc.load and Model: a compiled network through the C ABI of
runtime/cnn.h, with ctypes."""
import ctypes
import os
import threading

import numpy as np

__all__ = ["load", "Model", "CnnError"]

CNN_ABI_VERSION = 1


class CnnError(RuntimeError):
    """An error reported by a compiled network (its cnn_last_error)."""


class _TensorDesc(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("rank", ctypes.c_int32),
                ("dims", ctypes.c_int64 * 8)]


class _Info(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_uint32), ("name", ctypes.c_char_p),
                ("num_inputs", ctypes.c_int32), ("num_outputs", ctypes.c_int32),
                ("inputs", ctypes.POINTER(_TensorDesc)),
                ("outputs", ctypes.POINTER(_TensorDesc)),
                ("num_params", ctypes.c_uint64), ("macs", ctypes.c_uint64),
                ("weight_bytes", ctypes.c_uint64), ("arena_bytes", ctypes.c_uint64),
                ("compiler", ctypes.c_char_p)]


def _descs(p, n):
    out = []
    for i in range(n):
        d = p[i]
        out.append({"name": d.name.decode(), "shape": tuple(d.dims[k] for k in range(d.rank))})
    return out


def _bind(lib):
    """The ABI's functions with their C signatures; the optional ones
    (cnn_set_profile, cnn_set_batch_parallel: later than ABI version 1's
    first six) are None in a .so that lacks them."""
    vp, i64, cp = ctypes.c_void_p, ctypes.c_int64, ctypes.c_char_p
    lib.cnn_get_info.restype = ctypes.POINTER(_Info)
    lib.cnn_get_info.argtypes = []
    lib.cnn_create.restype = vp
    lib.cnn_create.argtypes = [cp, cp, ctypes.c_size_t]
    lib.cnn_run.restype = ctypes.c_int
    lib.cnn_run.argtypes = [vp, i64, ctypes.POINTER(vp), ctypes.POINTER(vp)]
    lib.cnn_set_num_threads.restype = ctypes.c_int
    lib.cnn_set_num_threads.argtypes = [vp, ctypes.c_int]
    lib.cnn_last_error.restype = cp
    lib.cnn_last_error.argtypes = [vp]
    lib.cnn_destroy.restype = None
    lib.cnn_destroy.argtypes = [vp]
    opt = {}
    for name, args in (("cnn_set_profile", [vp, cp]), ("cnn_set_batch_parallel",
                                                        [vp, ctypes.c_int])):
        f = getattr(lib, name, None)
        if f is not None:
            f.restype, f.argtypes = ctypes.c_int, args
        opt[name] = f
    return opt


class Model:
    """A loaded network (see the package's docstring): m(x), m.run(inputs),
    m.info; close() or `with`. Calls on one Model are serialized by a lock
    (the ABI lets one thread at a time use a model)."""

    def __init__(self, path, threads=None, weights=None):
        self.path = os.path.abspath(os.fspath(path))
        # RTLD_LOCAL: every .so exports the same cnn_* names; each Model
        # binds to its own file's.
        self._lib = ctypes.CDLL(self.path, mode=ctypes.RTLD_LOCAL)
        lib = self._lib
        self._opt = _bind(lib)
        self._lock = threading.Lock()
        self._m = None
        info = lib.cnn_get_info().contents
        if info.abi_version != CNN_ABI_VERSION:
            raise CnnError(f"{path}: ABI version {info.abi_version}, this module reads "
                           f"{CNN_ABI_VERSION}")
        self._inputs = _descs(info.inputs, info.num_inputs)
        self._outputs = _descs(info.outputs, info.num_outputs)
        self.info = {
            "name": info.name.decode(),
            "inputs": self._inputs,
            "outputs": self._outputs,
            "num_params": info.num_params,
            "macs": info.macs,
            "weight_bytes": info.weight_bytes,
            "arena_bytes": info.arena_bytes,
            "compiler": info.compiler.decode(),
            "abi_version": info.abi_version,
            "path": self.path,
        }
        err = ctypes.create_string_buffer(512)
        w = os.fsencode(weights) if weights else None
        self._m = lib.cnn_create(w, err, len(err))
        if not self._m:
            raise CnnError(f"{path}: {err.value.decode()}")
        # cnn_run through an attribute: the tests look at the pointers it gets
        self._cnn_run = lib.cnn_run
        if threads is not None:
            self.set_threads(threads)

    def __repr__(self):
        io = ", ".join(f"{d['name']}{list(d['shape'][1:])}" for d in self._inputs)
        oo = ", ".join(f"{d['name']}{list(d['shape'][1:])}" for d in self._outputs)
        state = "" if self._m else ", closed"
        return f"<cnncc.Model {self.info['name']}: {io} -> {oo} ({self.path}{state})>"

    def _check(self, rc):
        if rc != 0:
            raise CnnError(self._lib.cnn_last_error(self._m).decode())

    def _live(self):
        if self._m is None:
            raise CnnError("the model is closed")

    def set_threads(self, n):
        """cnn_set_num_threads: the threads cnn_run uses (0: one per core)."""
        with self._lock:
            self._live()
            self._check(self._lib.cnn_set_num_threads(self._m, int(n)))

    def profile(self, mode):
        """cnn_set_profile: "on" (a per-layer table on stderr when it stops),
        "off", or "trace:FILE" (a Chrome trace-event file, written when
        tracing stops or the model is closed; docs/performance.md)."""
        f = self._opt["cnn_set_profile"]
        if f is None:
            raise CnnError(f"{self.path} predates cnn_set_profile")
        with self._lock:
            self._live()
            self._check(f(self._m, None if mode is None else os.fsencode(mode)))

    def batch_parallel(self, on):
        """cnn_set_batch_parallel: whole samples per thread in a batch (the
        default) or every sample on all threads; the same results."""
        f = self._opt["cnn_set_batch_parallel"]
        if f is None:
            raise CnnError(f"{self.path} predates cnn_set_batch_parallel")
        with self._lock:
            self._live()
            self._check(f(self._m, 1 if on else 0))

    def close(self):
        """Frees the model (cnn_destroy): threads, arena, mapped weights. A
        trace being recorded is written. Closing twice is harmless."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if getattr(self, "_m", None):
                self._lib.cnn_destroy(self._m)
                self._m = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _input_array(self, desc, x, batch):
        a = np.asarray(x)
        want = desc["shape"][1:]
        need = f"[N, {', '.join(map(str, want))}]"
        if a.dtype.kind not in "fiub":
            raise ValueError(f"input '{desc['name']}' has dtype {a.dtype}; it needs numbers "
                             f"(float32, or anything numpy converts to it)")
        if a.ndim != len(desc["shape"]):
            raise ValueError(f"input '{desc['name']}' needs rank {len(desc['shape'])} {need}, "
                             f"got shape {a.shape}")
        if tuple(a.shape[1:]) != tuple(want):
            raise ValueError(f"input '{desc['name']}' needs shape {need}, got {a.shape}")
        if batch is not None and a.shape[0] != batch:
            raise ValueError(f"input '{desc['name']}' has batch {a.shape[0]}, another input has "
                             f"{batch}")
        # the same array when it is C-contiguous native float32: no copy
        return np.ascontiguousarray(a, dtype=np.float32)

    def _output_array(self, desc, y, batch):
        shape = (batch,) + tuple(desc["shape"][1:])
        if y is None:
            return np.empty(shape, dtype=np.float32)
        if not isinstance(y, np.ndarray) or y.dtype != np.float32 or \
                not y.flags.c_contiguous or not y.flags.writeable or y.shape != shape:
            raise ValueError(f"out['{desc['name']}'] must be a writable C-contiguous float32 "
                             f"array of shape {shape}")
        return y

    def run(self, inputs, out=None):
        """Runs the network on inputs, a dict by input name or a list in the
        order of info['inputs'] (numpy arrays [N, ...], any N, the same for
        all). Returns a dict of output name -> numpy float32 array [N, ...].
        out: an optional dict of output name -> array to write into
        (C-contiguous float32 of the right shape), returned as they are."""
        if isinstance(inputs, dict):
            names = [d["name"] for d in self._inputs]
            extra = set(inputs) - set(names)
            if extra:
                raise ValueError(f"unknown input(s) {sorted(extra)}; the inputs are {names}")
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(f"missing input(s) {missing}")
            inputs = [inputs[n] for n in names]
        elif isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if len(inputs) != len(self._inputs):
            raise ValueError(f"the network takes {len(self._inputs)} input(s), got {len(inputs)}")
        arrays, batch = [], None
        for d, x in zip(self._inputs, inputs):
            a = self._input_array(d, x, batch)
            batch = a.shape[0]
            arrays.append(a)
        out = dict(out or {})
        extra = set(out) - {d["name"] for d in self._outputs}
        if extra:
            raise ValueError(f"out: unknown output(s) {sorted(extra)}")
        outs = [self._output_array(d, out.get(d["name"]), batch) for d in self._outputs]
        if batch > 0:
            ip = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
            op = (ctypes.c_void_p * len(outs))(*[o.ctypes.data for o in outs])
            with self._lock:  # ctypes releases the GIL during the call
                self._live()
                self._check(self._cnn_run(self._m, batch, ip, op))
        return {d["name"]: o for d, o in zip(self._outputs, outs)}

    def __call__(self, *inputs):
        """m(x) or m(x1, x2): the first output (a tuple of all if several)."""
        outs = list(self.run(list(inputs)).values())
        return outs[0] if len(outs) == 1 else tuple(outs)


def load(path, threads=None, weights=None):
    """Loads a .so made by cnncc. threads: cnn_set_num_threads (None: the
    default, $CNN_NUM_THREADS or one per core); weights: the external
    weights file of a .so compiled with --external-weights."""
    return Model(path, threads=threads, weights=weights)
