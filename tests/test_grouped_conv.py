"""Grouped convolutions: Conv1D/2D/3D(groups=g), Keras 3's `groups`.

The channels split into g groups of C/g; group i is convolved with filters
i*F/g ... (i+1)*F/g - 1 of the kernel (*k, C/g, F); params prod(k)*C/g*F + F.
Checked here: shapes and parameters against that formula, Keras's refusals, the
NumPy forward against a per-group loop of plain convolutions written here, finite
differences, onnxruntime against NumPy (a BatchNormalization after it folded in),
and the .keras export. tests/test_grouped_conv_keras.py compares with Keras itself.
"""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

from cnnc.backends.keras import export
from cnnc.frontends.cnn import check_text

from .onnx_helpers import check_parity, model_from, random_weights
from .test_reference_forward import run
from .test_reference_gradients import check_gradients
from .test_shapes import one_layer


def _out(n, k, s, d, padding):
    if padding in ("same", "causal"):
        return -(-n // s)
    return (n - d * (k - 1) - 1) // s + 1


# (input, line): the output and parameters are computed from the formula in the test
CASES = [
    ((8, 8, 12), "Conv2D(6, 3, groups=3)"),
    ((8, 8, 12), "Conv2D(24, (3, 2), groups=12, strides=2, padding='same')"),    # depthwise-like
    ((9, 7, 4), "Conv2D(8, 3, groups=2, dilation_rate=2, use_bias=False)"),
    ((20, 6), "Conv1D(9, 4, groups=3, padding='causal')"),
    ((20, 6), "Conv1D(6, 5, groups=6, strides=3)"),
    ((5, 6, 7, 4), "Conv3D(8, (2, 3, 2), groups=4, padding='same')"),
    ((8, 8, 5), "Conv2D(5, 1, groups=1)"),
]


@pytest.mark.parametrize("shape,line", CASES)
def test_shape_params_and_macs(shape, line):
    info = one_layer(shape, line)
    L = info.layer
    g, f, c = L["groups"], L["filters"], shape[-1]
    k, s, d = L["kernel_size"], L["strides"], L["dilation_rate"]
    out = tuple(_out(n, kk, ss, dd, L["padding"]) for n, kk, ss, dd in zip(shape[:-1], k, s, d))
    assert info.output_shape == (*out, f)
    assert [w.shape for w in info.weights] == [(*k, c // g, f)] + ([(f,)] if L["use_bias"] else [])
    assert info.params == math.prod(k) * c // g * f + (f if L["use_bias"] else 0)
    assert info.macs == math.prod(out) * math.prod(k) * c // g * f


def _messages(text: str) -> list[tuple[str, tuple[str, ...]]]:
    checked = check_text(text)
    return [(d.message, tuple(d.notes)) for d in checked.diagnostics if d.severity == "error"]


@pytest.mark.parametrize("shape,line,message,keras", [
    ((8, 8, 12), "Conv2D(6, 3, groups=0)", "`groups` must be a positive integer, got 0",
     "The number of groups must be a positive integer. Received: groups=0."),
    ((8, 8, 12), "Conv2D(6, 3, groups=-2)", "`groups` must be a positive integer, got -2",
     "The number of groups must be a positive integer. Received: groups=-2."),
    ((8, 8, 12), "Conv2D(6, 3, groups=4)", "Conv2D filters=6 is not divisible by groups=4",
     "The number of filters must be evenly divisible by the number of groups. "
     "Received: groups=4, filters=6."),
    ((8, 8, 10), "Conv2D(8, 3, groups=4)", "Conv2D groups=4 does not divide its 10 input channels",
     "The number of input channels must be evenly divisible by the number of groups. "
     "Received groups=4, but the input has 10 channels (full input shape is (None, 8, 8, 10))."),
    ((20, 6), "Conv1D(8, 3, groups=4)", "Conv1D groups=4 does not divide its 6 input channels",
     "The number of input channels must be evenly divisible by the number of groups. "
     "Received groups=4, but the input has 6 channels (full input shape is (None, 20, 6))."),
])
def test_refused_with_keras_messages(shape, line, message, keras):
    (got,) = _messages(f"input {shape}\n{line}\n")
    assert got[0] == message
    assert f"Keras: {keras}" in got[1]


def test_groups_must_be_an_integer():
    (got,) = _messages("input (8, 8, 4)\nConv2D(4, 3, groups='two')\n")
    assert got[0].startswith("`groups` must be an integer")


def _plain_conv(x, kernel, s, d):
    """A direct 'valid' convolution, loops over output positions: (N, *spatial, C) with
    kernel (*k, C, F)."""
    r = kernel.ndim - 2
    k = kernel.shape[:r]
    out = [(n - dd * (kk - 1) - 1) // ss + 1 for n, kk, ss, dd in zip(x.shape[1:-1], k, s, d)]
    y = np.zeros((x.shape[0], *out, kernel.shape[-1]), np.float64)
    for pos in np.ndindex(*out):
        window = x[(slice(None), *(slice(p * ss, p * ss + dd * (kk - 1) + 1, dd)
                                   for p, ss, dd, kk in zip(pos, s, d, k)))]
        y[(slice(None), *pos)] = np.tensordot(window, kernel, axes=r + 1)
    return y


def _grouped_by_hand(x, kernel, bias, groups, s, d):
    c, f = x.shape[-1], kernel.shape[-1]
    cg, fg = c // groups, f // groups
    parts = [_plain_conv(x[..., i * cg:(i + 1) * cg], kernel[..., i * fg:(i + 1) * fg], s, d)
             for i in range(groups)]
    return np.concatenate(parts, axis=-1) + bias


@pytest.mark.parametrize("shape,groups,filters,k,s,d", [
    ((7, 6, 6), 2, 4, (3, 2), (1, 1), (1, 1)),
    ((7, 6, 6), 3, 6, (2, 2), (2, 1), (1, 1)),
    ((7, 6, 6), 6, 12, (3, 3), (1, 1), (2, 1)),       # one channel per group, 2 filters each
    ((7, 6, 6), 6, 6, (3, 3), (2, 2), (1, 1)),        # ConvNeXt's depthwise Conv2D
    ((9, 8), 4, 8, (3,), (2,), (1,)),
    ((4, 5, 4, 4), 2, 2, (2, 2, 2), (1, 1, 1), (1, 1, 1)),
])
def test_forward_equals_a_per_group_loop(shape, groups, filters, k, s, d):
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(*k, shape[-1] // groups, filters))
    bias = rng.normal(size=filters)
    x = rng.normal(size=(2, *shape))
    r = len(shape) - 1
    y = run(shape, [f"Conv{r}D({filters}, {k}, strides={s}, dilation_rate={d}, groups={groups})"],
            {f"conv{r}d/kernel": kernel, f"conv{r}d/bias": bias}, x=x)
    want = _grouped_by_hand(x.astype(np.float32), kernel.astype(np.float32),
                            bias.astype(np.float32), groups, s, d)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_same_padding_equals_zero_padded_valid():
    rng = np.random.default_rng(4)
    kernel, bias = rng.normal(size=(3, 3, 2, 6)), rng.normal(size=6)
    x = rng.normal(size=(2, 5, 6, 4)).astype(np.float32)
    y = run((5, 6, 4), ["Conv2D(6, 3, groups=2, padding='same')"],
            {"conv2d/kernel": kernel, "conv2d/bias": bias}, x=x)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = _grouped_by_hand(padded, kernel.astype(np.float32), bias.astype(np.float32), 2,
                            (1, 1), (1, 1))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,lines", [
    ((6, 5, 4), ["Conv2D(6, (3, 2), groups=2, padding='same')"]),
    ((7, 6, 4), ["Conv2D(8, 3, groups=4, strides=2, use_bias=False)"]),
    ((6, 6, 3), ["Conv2D(6, 3, groups=3, dilation_rate=2, activation='tanh')"]),   # depthwise path
    ((6, 6, 4), ["Conv2D(4, 3, groups=2, activation='relu')", "MaxPooling2D()"]),  # not fused
    ((9, 4), ["Conv1D(4, 3, groups=2, padding='causal')"]),
    ((4, 4, 3, 4), ["Conv3D(4, 2, groups=2, padding='same')"]),
    ((6, 6, 4), ["Conv2D(4, 3, groups=4, trainable=False)", "Conv2D(2, 1, groups=2)"]),
])
def test_gradients_match_finite_differences(shape, lines):
    check_gradients(shape, lines)


@pytest.mark.parametrize("body", [
    "input (9, 8, 6)\nConv2D(4, (3, 2), groups=2, strides=2, padding='same', activation='relu')",
    "input (9, 8, 6)\nConv2D(12, 3, groups=6, dilation_rate=2)",
    "input (9, 8, 6)\nConv2D(6, 7, groups=6, padding='same')",
    "input (11, 6)\nConv1D(6, 3, groups=3, padding='causal')",
    "input (5, 6, 4, 4)\nConv3D(8, 2, groups=4, strides=(2, 1, 1))",
])
def test_onnx_matches_numpy(body):
    lowered = check_parity(body)
    (conv,) = [n for n in lowered.proto.graph.node if n.op_type == "Conv"]
    groups = {a.name: a.i for a in conv.attribute}["group"]
    assert groups == int(body.split("groups=")[1].split(",")[0].split(")")[0])


def test_batch_normalization_folds_into_a_grouped_conv():
    body = ("input (9, 8, 6)\nZeroPadding2D(1)\nConv2D(6, 3, groups=3, use_bias=False)\n"
            "BatchNormalization()\nReLU()")
    lowered = check_parity(body)
    ops = [n.op_type for n in lowered.proto.graph.node]
    assert "BatchNormalization" not in ops and "Pad" not in ops and ops.count("Conv") == 1


def test_export_writes_groups_and_grouped_kernels(tmp_path):
    m = model_from("input (8, 8, 6)\nConv2D(9, 3, groups=3, padding='same')\n"
                   "Conv2D(9, 3, groups=9)")
    m.set_weights(random_weights(m))
    path = tmp_path / "g.keras"
    export(m.analysis, m.weights, path)
    h5py = pytest.importorskip("h5py")
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        (tmp_path / "w.h5").write_bytes(z.read("model.weights.h5"))
    layers = [l["config"] for l in config["config"]["layers"] if l["class_name"] == "Conv2D"]
    assert [c["groups"] for c in layers] == [3, 9]
    with h5py.File(tmp_path / "w.h5") as f:
        assert f["layers/conv2d/vars/0"].shape == (3, 3, 2, 9)
        assert f["layers/conv2d_1/vars/0"].shape == (3, 3, 1, 9)
        np.testing.assert_array_equal(f["layers/conv2d_1/vars/0"][()], m.weights["conv2d_1/kernel"])
