"""cnncc: compile networks with cnncc and run them from Python.

    import cnncc
    cnncc.compile("examples/resnet50.yaml", "resnet50.so", weights="r50.safetensors")
    m = cnncc.load("resnet50.so", threads=2)
    print(m.info)                 # names, shapes, parameters, MACs, arena, compiler
    y = m(x)                      # x: float32 [N, 3, 224, 224]; y: [N, 1000]
    ys = m.run({"image": x})      # every output, by name

    cnncc.save_safetensors(model.state_dict(), "net.safetensors")   # PyTorch -> cnncc --weights
    cnncc.from_torch(model, torch.zeros(1, 3, 224, 224), "net.so")  # PyTorch -> ONNX -> .so

Pure Python: the standard library's ctypes and numpy (torch only for
from_torch). A compiled .so exports the C ABI of runtime/cnn.h
(docs/abi.md); this module calls it.

The API
    load(path, threads=None, weights=None) -> Model
        threads: cnn_set_num_threads (None: $CNN_NUM_THREADS, else one per
        core); weights: the .weights file of a .so compiled with
        --external-weights.
    Model.info          dict: name, inputs and outputs ([{"name", "shape"}],
                        shape with 1 for the batch), num_params, macs,
                        weight_bytes, arena_bytes, compiler, abi_version, path
    Model(x, ...)       the first output for inputs in info order (a tuple if
                        there are several outputs)
    Model.run(inputs, out=None)
                        inputs: dict by name or list; returns a dict by
                        output name; out: arrays to write the outputs into
    Model.set_threads(n), Model.profile(mode), Model.batch_parallel(on)
                        cnn_set_num_threads, cnn_set_profile ("on", "off",
                        "trace:FILE"), cnn_set_batch_parallel
    Model.close(), `with cnncc.load(...) as m:`
    compile(src, out, weights=None, opt=2, cnncc=None, **flags) -> out
        runs the cnncc executable; flags are its options as keywords
        (header="net.h", target_cpu="x86-64-v3", external_weights=True, ...)
    save_safetensors(state_dict, path, metadata=None) -> path
    load_safetensors(path) -> dict of numpy arrays
    from_torch(module, example_input, out, opset=13, ...) -> out
    find_cnncc(cnncc=None) -> the path of the compiler compile() runs
    CnnError, CompileError, UnsupportedOpsError (.ops), CompileWarning

Inputs are numpy arrays (or anything numpy.asarray takes) of the input's
shape with any batch size N, the same N for all inputs. A C-contiguous
native float32 array is passed to the network as it is, without a copy;
anything else (float64, integers, a non-contiguous view, big-endian) is
converted to float32 once. A wrong rank or shape, a batch that differs
between inputs, or a dtype that is not a number (complex, object,
strings) raises ValueError naming the input and the shape it needs. NaN
and Inf are computed through as IEEE arithmetic says; nothing checks for
them. Outputs are new float32 arrays unless out= gives them. N = 0 gives
empty outputs. Errors the network reports raise CnnError with its
cnn_last_error message.

Threads. The ABI lets one thread at a time use a model (runtime/cnn.h:
"one cnn_model may be used by one thread at a time; distinct models are
independent"); later runtimes may lift that. A Model therefore holds a
lock around every call into it: two Python threads that share one Model
take turns, safely, and the calls release the GIL, so other Python
threads go on meanwhile. For two inferences at once, give each thread a
Model of its own (cnncc.load the same path again: the library is mapped
once, and each Model is its own cnn_model, with its own thread pool and
activation arena); they run in parallel. A model's
own thread pool already uses every core by default: with T Python threads
each running a Model, give each threads=cores // T (workers x threads <=
cores; docs/deploy.md). Several models of the same or different networks
work side by side in one process.

Where the compiler comes from (compile, from_torch): cnncc=PATH, $CNNCC,
the cnncc this package was installed with (cmake --install puts both
under one prefix), the build tree's (build/python is this package wired
to build/cnncc), or cnncc on $PATH.
"""
from ._compile import CompileError, CompileWarning, UnsupportedOpsError, compile, find_cnncc
from ._model import CnnError, Model, load
from ._safetensors import load_safetensors, save_safetensors
from ._torch import from_torch

__all__ = ["load", "Model", "CnnError", "compile", "find_cnncc", "CompileError",
           "UnsupportedOpsError", "CompileWarning", "save_safetensors", "load_safetensors",
           "from_torch"]
__version__ = "0.1.0"
