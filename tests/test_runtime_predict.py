"""`cnnc.runtime.predict_onnx` (used by `cnnc evaluate --runtime onnx`) and providers."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.runtime import sessions as runtime
from cnnc.support.diagnostics import UsageError

from .onnx_helpers import model_from, random_weights

BODY = "input (6, 6, 2)\nConv2D(3, 3, activation='relu')\nFlatten()\nDense(4, activation='softmax')"


@pytest.fixture
def model():
    m = model_from(BODY)
    m.set_weights(random_weights(m, 2))
    return m


def _x(n):
    return np.random.default_rng(n).standard_normal((n, 6, 6, 2)).astype(np.float32)


def test_predict_onnx_equals_reference_in_chunks(model):
    x = _x(37)
    got = runtime.predict_onnx(model.analysis, model.weights, x, provider="cpu", batch_size=10)
    np.testing.assert_allclose(got, model.predict(x), atol=1e-5)


def test_session_is_cached_until_weights_change(model):
    x = _x(3)
    first = runtime.model_session(model.analysis, model.weights, "cpu")
    assert runtime.model_session(model.analysis, model.weights, "cpu") is first
    before = runtime.predict_onnx(model.analysis, model.weights, x, provider="cpu")
    model.set_weights(random_weights(model, 9))
    assert runtime.model_session(model.analysis, model.weights, "cpu") is not first
    after = runtime.predict_onnx(model.analysis, model.weights, x, provider="cpu")
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, model.predict(x), atol=1e-5)


def test_in_place_weight_updates_are_seen(model):
    """The training loop updates weight arrays in place: the cache must notice."""
    x = _x(2)
    runtime.predict_onnx(model.analysis, model.weights, x, provider="cpu")
    model.weights["dense/bias"] += 1.0
    np.testing.assert_allclose(runtime.predict_onnx(model.analysis, model.weights, x, provider="cpu"), model.predict(x),
                               atol=1e-5)


def test_predict_onnx_checks_its_input(model):
    with pytest.raises(UsageError, match=r"has shape \(3, 6, 6\)"):
        runtime.predict_onnx(model.analysis, model.weights, np.zeros((3, 6, 6)), provider="cpu")
    with pytest.raises(UsageError, match="dtype uint8"):
        runtime.predict_onnx(model.analysis, model.weights, np.zeros((3, 6, 6, 2), np.uint8), provider="cpu")


def test_providers():
    assert runtime.providers_for("cpu") == [runtime.CPU]
    assert runtime.providers_for("auto")[-1] == runtime.CPU
    with pytest.raises(UsageError, match="unknown provider 'tpu'"):
        runtime.providers_for("tpu")


def test_session_options_use_every_core():
    import onnxruntime as ort
    opts = runtime.session_options()
    assert opts.intra_op_num_threads == runtime.cpu_cores()
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_command_line_setup_imports_nothing_heavy():
    """`cnnc check` builds the whole parser: the ONNX commands must not import NumPy,
    onnx or onnxruntime just to declare their options."""
    import subprocess
    import sys
    code = ("import sys; from cnnc.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'onnx', 'onnxruntime', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_run_command_offers_the_runtime_providers():
    from cnnc.commands import run
    assert run.PROVIDERS == runtime.PROVIDERS
