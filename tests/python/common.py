"""What the Python tests share: paths from the environment ctest sets,
and a compile step that reuses its output within one test process.

    CNNCC_SOURCE_DIR   the repository (examples/, tests/e2e/)
    CNNCC_TEST_WORK    a scratch folder for this test
    PYTHONPATH         BUILD/python, the package wired to BUILD/cnncc
"""
import os
import sys

SRC = os.environ.get("CNNCC_SOURCE_DIR",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
WORK = os.environ.get("CNNCC_TEST_WORK", "/tmp/cnncc-python-tests")
os.makedirs(WORK, exist_ok=True)
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))  # make_ref, lenet5

import cnncc  # noqa: E402

_compiled = {}


def example(name):
    return os.path.join(SRC, "examples", name)


def work(name):
    return os.path.join(WORK, name)


def compiled(spec, out_name, **kw):
    """spec compiled into WORK/out_name once per process (kw: cnncc.compile's)."""
    key = (spec, out_name, tuple(sorted(kw.items())))
    if key not in _compiled:
        _compiled[key] = cnncc.compile(spec, work(out_name), **kw)
    return _compiled[key]
