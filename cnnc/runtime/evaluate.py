"""Keras's evaluate on either engine: the NumPy reference computes the outputs, or
onnxruntime does on the model's ONNX lowering (`cnnc evaluate --runtime onnx`,
`Model.evaluate(runtime="onnx")`); the loss and metrics are the NumPy back end's."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from cnnc.analysis.infer import Analysis
from cnnc.backends.numpy import training
from cnnc.runtime.sessions import model_session, run_batches
from cnnc.support.diagnostics import UsageError

RUNTIMES = ("numpy", "onnx")


def evaluate(analysis: Analysis, weights: Mapping[str, np.ndarray], x, y, *,
             runtime: str = "numpy", provider: str = "auto", **kwargs: Any):
    """training.evaluate, the outputs computed by `runtime`."""
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}", ["choose numpy or onnx"])
    def onnx_forward():
        # One session for the whole evaluation, made once the data are checked:
        # looking it up per batch would hash every weight each time.
        sess = model_session(analysis, weights, provider)
        return lambda xb: run_batches(sess, xb, len(xb))[0]
    # overflow gives NaN or inf losses, reported as such (null in JSON), never as NumPy's
    # RuntimeWarnings (which PYTHONWARNINGS=error turns into exceptions)
    with np.errstate(all="ignore"):
        return training.evaluate(analysis, weights, x, y,
                                 forward=onnx_forward if runtime == "onnx" else None, **kwargs)
