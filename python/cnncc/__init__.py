"""cnncc: load a network compiled by cnncc and run it from Python.

    import cnncc
    m = cnncc.load("resnet50.so", threads=2)
    print(m.info)                 # names, shapes, parameters, MACs, compiler
    y = m(x)                      # x: float32 [N, 3, 224, 224]; y: [N, 1000]
    ys = m.run({"image": x})      # every output, by name

Pure Python: the standard library's ctypes and numpy. The shared object
exports the C ABI of runtime/cnn.h (docs/abi.md).

Inputs: numpy arrays of the input's shape with any batch size N. A
C-contiguous float32 array is passed to the network without a copy;
anything else (another dtype, a non-contiguous view) is converted once.
A wrong rank or shape raises ValueError naming the input and the shape
it needs. NaN and Inf values are computed through as IEEE arithmetic
says; nothing checks for them.

Threads: a Model may be used by one Python thread at a time (the ABI's
rule for one cnn_model; calls into it release the GIL); load the same .so
again for another thread, or guard the model with a lock. Several models,
of the same or different networks, work side by side.
"""
import ctypes
import os

import numpy as np

__all__ = ["load", "Model", "CnnError"]

CNN_ABI_VERSION = 1


class CnnError(RuntimeError):
    """An error reported by a compiled network (cnn_last_error)."""


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


class Model:
    """A loaded network: m(x), m.run(inputs), m.info; close() or `with`."""

    def __init__(self, path, threads=None, weights=None):
        self._lib = ctypes.CDLL(os.path.abspath(path), mode=ctypes.RTLD_LOCAL)
        lib = self._lib
        lib.cnn_get_info.restype = ctypes.POINTER(_Info)
        lib.cnn_create.restype = ctypes.c_void_p
        lib.cnn_create.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.cnn_run.restype = ctypes.c_int
        lib.cnn_run.argtypes = [ctypes.c_void_p, ctypes.c_int64,
                                ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)]
        lib.cnn_set_num_threads.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.cnn_last_error.restype = ctypes.c_char_p
        lib.cnn_last_error.argtypes = [ctypes.c_void_p]
        lib.cnn_destroy.argtypes = [ctypes.c_void_p]
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
        }
        err = ctypes.create_string_buffer(512)
        w = os.fsencode(weights) if weights else None
        self._m = lib.cnn_create(w, err, len(err))
        if not self._m:
            raise CnnError(f"{path}: {err.value.decode()}")
        if threads is not None:
            self._check(lib.cnn_set_num_threads(self._m, int(threads)))

    def _check(self, rc):
        if rc != 0:
            raise CnnError(self._lib.cnn_last_error(self._m).decode())

    def close(self):
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
        if a.ndim != len(desc["shape"]):
            raise ValueError(f"input '{desc['name']}' needs rank {len(desc['shape'])} "
                             f"[N, {', '.join(map(str, want))}], got shape {a.shape}")
        if tuple(a.shape[1:]) != tuple(want):
            raise ValueError(f"input '{desc['name']}' needs shape [N, {', '.join(map(str, want))}]"
                             f", got {a.shape}")
        if batch is not None and a.shape[0] != batch:
            raise ValueError(f"input '{desc['name']}' has batch {a.shape[0]}, another input has "
                             f"{batch}")
        if a.dtype.kind not in "fiub":
            raise ValueError(f"input '{desc['name']}' has dtype {a.dtype}; numbers are needed")
        return np.ascontiguousarray(a, dtype=np.float32)

    def run(self, inputs):
        """Runs the network; inputs: a dict by input name, or a list in the
        order of info['inputs']. Returns a dict of outputs by name."""
        if self._m is None:
            raise CnnError("the model is closed")
        if isinstance(inputs, dict):
            names = [d["name"] for d in self._inputs]
            extra = set(inputs) - set(names)
            if extra:
                raise ValueError(f"unknown input(s) {sorted(extra)}; the inputs are {names}")
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(f"missing input(s) {missing}")
            inputs = [inputs[n] for n in names]
        if len(inputs) != len(self._inputs):
            raise ValueError(f"the network takes {len(self._inputs)} input(s), got {len(inputs)}")
        arrays, batch = [], None
        for d, x in zip(self._inputs, inputs):
            a = self._input_array(d, x, batch)
            batch = a.shape[0]
            arrays.append(a)
        outs = [np.empty((batch,) + tuple(d["shape"][1:]), dtype=np.float32) for d in self._outputs]
        ip = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
        op = (ctypes.c_void_p * len(outs))(*[o.ctypes.data for o in outs])
        self._check(self._lib.cnn_run(self._m, batch, ip, op))
        return {d["name"]: o for d, o in zip(self._outputs, outs)}

    def __call__(self, *inputs):
        """m(x) or m(x1, x2): the first output (a tuple of all if several)."""
        outs = list(self.run(list(inputs)).values())
        return outs[0] if len(outs) == 1 else tuple(outs)


def load(path, threads=None, weights=None):
    """Loads a .so made by cnncc. threads: cnn_set_num_threads (None: the
    default, CNN_NUM_THREADS or one per core); weights: the external weights
    file of a .so compiled with --external-weights."""
    return Model(path, threads=threads, weights=weights)
