"""Grouped convolutions against Keras itself (dev only: needs Keras; CI skips it).

For several `groups` on Conv1D/2D/3D (one channel per group, several, the plain
groups=1): the same model built in Keras from cnnc's IR with cnnc's random weights has
cnnc's output shapes, weight shapes and parameter counts, and its outputs equal cnnc's
NumPy reference and onnxruntime (1e-5 of the output scale); `cnnc export`'s .keras loads
in Keras and predicts the same. Keras's refusals are cnnc's, with Keras's own message
quoted in cnnc's note.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnc.backends import onnx as lower
from cnnc.backends.keras import export
from cnnc.backends.numpy.network import Network

from .onnx_helpers import assert_close, model_from, ort_run, random_weights
from .test_grouped_conv import _messages
from .test_onnx_keras import _keras_twin

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="Keras is not installed (a dev-only oracle)")
pytestmark = pytest.mark.keras

BODIES = [
    "input (10, 9, 12)\nConv2D(12, 3, groups=12, padding='same')",
    "input (10, 9, 12)\nConv2D(24, (3, 2), groups=6, strides=2, activation='relu')",
    "input (10, 9, 12)\nConv2D(8, 3, groups=4, dilation_rate=2, use_bias=False)",
    "input (10, 9, 12)\nConv2D(6, 1, groups=2)\nBatchNormalization()\n"
    "Conv2D(6, 7, groups=6, padding='same')\nConv2D(12, 3, groups=3)",
    "input (10, 9, 12)\nConv2D(9, 3, groups=1)",
    "input (17, 8)\nConv1D(8, 3, groups=2, padding='causal', dilation_rate=2)",
    "input (17, 8)\nConv1D(16, 4, groups=8, strides=3)",
    "input (6, 7, 5, 4)\nConv3D(8, (2, 3, 2), groups=4, padding='same')",
    "input (6, 7, 5, 4)\nConv3D(2, 2, groups=2, strides=2)",
]


@pytest.mark.parametrize("body", BODIES)
def test_grouped_conv_equals_keras(body, tmp_path):
    model = model_from(body)
    model.set_weights(random_weights(model, 5))
    km = _keras_twin(model)
    mine = [(i.name, [None, *i.output_shape], i.params, [w.shape for w in i.weights])
            for i in model.analysis.infos]
    theirs = [(l.name, list(l.output.shape), int(l.count_params()),
               [tuple(w.shape) for w in l.weights]) for l in km.layers]
    assert mine == theirs
    x = np.random.default_rng(6).standard_normal((3, *model.ir.input_shape)).astype(np.float32)
    want = np.asarray(km(x, training=False))
    numpy_out = Network(model.analysis, model.weights).forward(x)
    onnx_out = ort_run(lower.to_onnx(model.analysis, model.weights), x)
    assert_close(numpy_out, want, "NumPy reference vs Keras")
    assert_close(onnx_out, want, "onnxruntime vs Keras")
    scale = max(1.0, float(np.max(np.abs(want))))
    print(f"{body.splitlines()[1]}: max |NumPy - Keras| / scale "
          f"{np.max(np.abs(numpy_out - want)) / scale:.1e}, ONNX "
          f"{np.max(np.abs(onnx_out - want)) / scale:.1e}")
    path = tmp_path / "g.keras"
    export(model.analysis, model.weights, path)
    loaded = keras.saving.load_model(path)
    assert [getattr(l, "groups", None) for l in loaded.layers] == \
        [getattr(l, "groups", None) for l in km.layers]
    assert_close(np.asarray(loaded(x, training=False)), want, "exported .keras in Keras")


@pytest.mark.parametrize("shape,line", [
    ((8, 8, 12), "Conv2D(6, 3, groups=0)"),
    ((8, 8, 12), "Conv2D(6, 3, groups=4)"),
    ((8, 8, 10), "Conv2D(8, 3, groups=4)"),
    ((20, 6), "Conv1D(8, 3, groups=4)"),
    ((5, 5, 5, 6), "Conv3D(9, 2, groups=9)"),
])
def test_refusals_quote_keras(shape, line):
    with pytest.raises(ValueError) as e:
        keras.Sequential([keras.Input(shape), eval("layers." + line, {"layers": keras.layers})])
    (got,) = _messages(f"input {shape}\n{line}\n")
    assert f"Keras: {e.value}" in got[1], (got, str(e.value))
