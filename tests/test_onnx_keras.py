"""The ONNX lowering against Keras itself: same stack, same weights, same input,
onnxruntime's output equal to Keras's (inference mode).

Runs only where Keras and onnxruntime are importable together (never in CI).
Covers every case of test_onnx_layers.py, every activation at both ends of the
opset range, and random stacks from keras_stacks.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnc.analysis import activations
from cnnc.backends import onnx as lower
from cnnc.backends.onnx import MAX_OPSET, MIN_OPSET

from .keras_stacks import keras_model, random_stack
from .onnx_helpers import assert_close, model_from, ort_run, random_weights
from .test_onnx_layers import ALL_CASES, UNKNOWN_SIZE_CASES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="Keras is not installed (a dev-only oracle)")
pytestmark = pytest.mark.keras

N_STACKS = int(os.environ.get("CNNC_KERAS_STACKS", "100"))


def _keras_twin(model):
    km = keras_model(model.ir)
    for info in model.analysis.infos:
        if info.weights:
            km.get_layer(info.name).set_weights([model.weights[f"{info.name}/{w.name}"]
                                                 for w in info.weights])
    return km


def check_against_keras(model, opset=None, sample=None, seed=0, rtol=1e-5):
    model.set_weights(random_weights(model, seed))
    x = np.random.default_rng(seed + 1).standard_normal(
        (3, *(sample or model.ir.input_shape))).astype(np.float32)
    want = np.asarray(_keras_twin(model)(x, training=False))
    got = ort_run(lower.to_onnx(model.analysis, model.weights, opset), x)
    assert_close(got, want, "onnxruntime vs Keras", rtol)


@pytest.mark.parametrize("body", [c[1] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES])
def test_layer_matches_keras(body):
    check_against_keras(model_from(body))


@pytest.mark.parametrize("body,sample", [c[1:] for c in UNKNOWN_SIZE_CASES],
                         ids=[c[0] for c in UNKNOWN_SIZE_CASES])
def test_unknown_sizes_match_keras(body, sample):
    check_against_keras(model_from(body), sample=sample)


@pytest.mark.parametrize("act", activations.SUPPORTED)
@pytest.mark.parametrize("opset", sorted({MIN_OPSET, MAX_OPSET}))
def test_activation_matches_keras(act, opset):
    # exp(exp(x)) turns float32's rounding of the inner exp (6e-8 relative) into ~1e-5
    rtol = 1e-4 if act == "exponential" else 1e-5
    check_against_keras(model_from(f"input (5, 4, 2)\nConv2D(3, 2, activation='{act}')\n"
                                   f"Flatten()\nActivation('{act}')"), opset, rtol=rtol)


@pytest.mark.parametrize("seed", range(N_STACKS))
def test_random_stack_matches_keras(seed):
    from cnnc.frontends.cnn import check_text
    from cnnc.model import Model
    checked = check_text(random_stack(seed), f"stack{seed}.cnn")
    if not checked.ok:
        pytest.skip("a stack cnnc refuses (test_keras_parity.py checks Keras refuses it too)")
    model = Model(checked)
    try:
        _keras_twin(model)(np.zeros((1, *model.ir.input_shape), np.float32))
    except Exception:  # noqa: BLE001 - a TensorFlow-only limit (cnnc warns about it)
        pytest.skip("TensorFlow cannot run this stack")
    check_against_keras(model, seed=seed, rtol=1e-4)
