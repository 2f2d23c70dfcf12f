"""Folding at compile time (cnnc/lower/fold.py): a BatchNormalization after a convolution
becomes part of its weights, a ZeroPadding before one part of its pads. The graph loses
those nodes and computes what the NumPy reference (which folds nothing) computes."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends import onnx as lower

from .onnx_helpers import check_parity, model_from, random_weights


def _ops(body: str) -> list[str]:
    model = model_from(body)
    model.set_weights(random_weights(model, 0))
    return [n.op_type for n in lower.to_onnx(model.analysis, model.weights).graph.node]


@pytest.mark.parametrize("conv", ["Conv2D(4, 3, use_bias=False)", "Conv2D(4, 3)",
                                  "DepthwiseConv2D(3, depth_multiplier=2)",
                                  "SeparableConv2D(4, 3, depth_multiplier=2)", "Conv1D(4, 3)"])
def test_batch_norm_folds_into_the_convolution(conv):
    shape = "(9, 3)" if "1D" in conv else "(7, 7, 3)"
    body = f"input {shape}\n{conv}\nBatchNormalization(epsilon=0.01)\nActivation('relu')"
    assert "BatchNormalization" not in _ops(body)
    check_parity(body)        # onnxruntime == the unfolded NumPy reference


@pytest.mark.parametrize("body", [
    "input (7, 7, 3)\nConv2D(4, 3, activation='relu')\nBatchNormalization()",   # activation between
    "inputs = Input(shape=(7, 7, 3))\nc = Conv2D(4, 3)(inputs)\nb = BatchNormalization()(c)\n"
    "y = Add()([b, c])",                                                          # conv read twice
    "input (7, 7, 3)\nConv2D(4, 3)\nBatchNormalization(axis=1)",                  # not the channels
])
def test_batch_norm_stays_where_folding_would_change_the_result(body):
    assert "BatchNormalization" in _ops(body) or "Mul" in _ops(body)
    check_parity(body)


@pytest.mark.parametrize("body", [
    "input (8, 8, 3)\nZeroPadding2D(((1, 2), (0, 3)))\nConv2D(4, 3, strides=2)",
    "input (8, 8, 3)\nZeroPadding2D(1)\nDepthwiseConv2D(3, strides=2, padding='same')",
    "input (9, 3)\nZeroPadding1D((2, 1))\nSeparableConv1D(4, 3)",
])
def test_zero_padding_folds_into_the_convolutions_pads(body):
    assert "Pad" not in _ops(body)
    check_parity(body)


def test_zero_padding_before_pooling_stays():
    """Max pooling pads with -inf, not zeros: folding would change the result."""
    body = "input (8, 8, 3)\nZeroPadding2D(1)\nMaxPooling2D(3)"
    assert "Pad" in _ops(body)
    check_parity(body)


def test_folding_keeps_keras_values_in_float64():
    """The folded weights are computed in float64: a tiny variance stays accurate."""
    from cnnc.backends.numpy.network import Network

    from .onnx_helpers import assert_close, ort_run
    model = model_from("input (5, 5, 2)\nConv2D(3, 1)\nBatchNormalization(epsilon=1e-6)")
    w = random_weights(model, 1)
    w["batch_normalization/moving_variance"] = np.full(3, 1e-5, np.float32)
    model.set_weights(w)
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 2)).astype(np.float32)
    proto = lower.to_onnx(model.analysis, model.weights)
    assert "BatchNormalization" not in [n.op_type for n in proto.graph.node]
    assert_close(ort_run(proto, x), Network(model.analysis, model.weights).forward(x), "folded")
