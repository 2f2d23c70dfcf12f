"""--threads sets the BLAS thread count before NumPy loads (it has no effect after)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnc.cli import main

SCRIPT = """
import os, sys
from cnnc.commands._common import set_threads
assert "numpy" not in sys.modules
set_threads(1)
import numpy
print(os.environ["OPENBLAS_NUM_THREADS"], os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"])
"""


def test_threads_are_set_before_numpy_loads():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1", "1"]


def test_threads_after_numpy_warns_and_bad_values_fail(capsys):
    import numpy  # noqa: F401  (loaded, as in this test process)

    from cnnc.commands._common import set_threads
    set_threads(2)
    assert "no effect" in capsys.readouterr().err
    assert main(["train", "examples/mnist.cnn", "--data", "digits", "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
