"""Conv1D/2D/3DTranspose, UpSampling1D/2D/3D, Cropping1D/2D/3D and Resizing through
every phase: shapes and parameter counts worked out by hand from Keras's formulas,
small forward results computed by hand, finite-difference gradients (float64) for
every weight and the input, and onnxruntime against the NumPy reference.

Transposed convolution, K = d*(k-1)+1 (keras/src/backend/common/backend_utils.py):
  'valid': (n-1)*s + K + (max(K, s) - K if output_padding is None else output_padding)
  'same':  n*s if output_padding is None else (n-1)*s + K%2 + output_padding
  params prod(k)*C*filters (+filters); kernel (*kernel_size, filters, C).
UpSampling n*size; Cropping n - before - after (> 0); Resizing (height, width).
"""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.analysis import shapes as sh
from cnnc.backends.numpy.network import Network
from cnnc.backends.onnx import MAX_OPSET, MIN_OPSET
from cnnc.frontends.cnn import check_text

from .onnx_helpers import check_parity
from .test_reference_gradients import check_gradients
from .test_shapes import one_layer

# (input, layer, output, params) -- the arithmetic in the comment.
SHAPES = [
    ((5, 4, 3), "Conv2DTranspose(8, 3)", (7, 6, 8), 224),                           # 4+3; 9*3*8+8
    ((5, 4, 3), "Conv2DTranspose(8, 3, strides=2)", (11, 9, 8), 224),                # 4*2+3, 3*2+3
    ((5, 4, 3), "Conv2DTranspose(8, 2, strides=3)", (15, 12, 8), 104),               # 4*3+2+(3-2)
    ((5, 4, 3), "Conv2DTranspose(8, 3, strides=2, padding='same')", (10, 8, 8), 224),  # n*s
    ((5, 4, 3), "Conv2DTranspose(8, 3, strides=2, output_padding=1)", (12, 10, 8), 224),  # 4*2+3+1
    ((5, 4, 3), "Conv2DTranspose(8, 3, strides=2, padding='same', output_padding=0)", (9, 7, 8), 224),  # 8+1+0
    ((5, 4, 3), "Conv2DTranspose(8, 4, strides=3, padding='same', output_padding=(1, 2))", (13, 11, 8), 392),  # 12+0+1, 9+0+2; 16*3*8+8
    ((5, 4, 3), "Conv2DTranspose(8, 3, dilation_rate=2, use_bias=False)", (9, 8, 8), 216),  # K=5: 4+5
    ((10, 6), "Conv1DTranspose(4, 5, strides=2)", (23, 4), 124),                    # 18+5; 5*6*4+4
    ((10, 6), "Conv1DTranspose(4, 5, strides=2, padding='same')", (20, 4), 124),
    ((3, 4, 2, 1), "Conv3DTranspose(2, (2, 3, 1), strides=(1, 2, 3))", (4, 9, 6, 2), 14),  # 2+2, 6+3, 3+1+2
    ((None, 3), "Conv1DTranspose(2, 3, strides=2)", (None, 2), 20),
    ((10, 6), "UpSampling1D()", (20, 6), 0),
    ((10, 6), "UpSampling1D(3)", (30, 6), 0),
    ((5, 4, 3), "UpSampling2D()", (10, 8, 3), 0),
    ((5, 4, 3), "UpSampling2D((1, 3), interpolation='bilinear')", (5, 12, 3), 0),
    ((None, 4, 3), "UpSampling2D(2)", (None, 8, 3), 0),
    ((3, 4, 2, 1), "UpSampling3D()", (6, 8, 4, 1), 0),
    ((3, 4, 2, 1), "UpSampling3D((1, 2, 3))", (3, 8, 6, 1), 0),
    ((10, 6), "Cropping1D()", (8, 6), 0),                                            # 10-1-1
    ((10, 6), "Cropping1D((0, 3))", (7, 6), 0),
    ((10, 6), "Cropping1D(4)", (2, 6), 0),
    ((5, 4, 3), "Cropping2D()", (5, 4, 3), 0),
    ((5, 4, 3), "Cropping2D(1)", (3, 2, 3), 0),
    ((5, 4, 3), "Cropping2D((2, 1))", (1, 2, 3), 0),                                  # 5-2-2, 4-1-1
    ((5, 4, 3), "Cropping2D(((1, 0), (0, 3)))", (4, 1, 3), 0),
    ((5, 4, 3), "Cropping2D(((1, 0), 1))", (4, 2, 3), 0),
    ((None, 4, 3), "Cropping2D(((1, 0), 1))", (None, 2, 3), 0),
    ((3, 4, 5, 1), "Cropping3D()", (1, 2, 3, 1), 0),
    ((3, 4, 5, 1), "Cropping3D(((0, 1), 0, (2, 0)))", (2, 4, 3, 1), 0),
    ((5, 4, 3), "Resizing(32, 16)", (32, 16, 3), 0),
    ((None, None, 3), "Resizing(7, 9, interpolation='nearest')", (7, 9, 3), 0),
]


@pytest.mark.parametrize("input_shape,line,output,params", SHAPES, ids=[c[1] for c in SHAPES])
def test_shape_and_params(input_shape, line, output, params):
    info = one_layer(input_shape, line)
    assert info.output_shape == output
    assert info.params == params


def test_conv_transpose_weights_follow_keras():
    info = one_layer((5, 4, 3), "Conv2DTranspose(8, (3, 2))")
    assert [(w.name, w.shape) for w in info.weights] == [("kernel", (3, 2, 8, 3)), ("bias", (8,))]
    assert info.macs == 5 * 4 * 6 * 3 * 8         # every input position meets every tap
    assert [w.shape for w in one_layer((7, 2), "Conv1DTranspose(5, 4, use_bias=False)").weights] == [(4, 5, 2)]
    assert one_layer((2, 2, 2, 4), "Conv3DTranspose(1, 2)").weights[0].shape == (2, 2, 2, 1, 4)


def test_conv3d_transpose_takes_data_format_before_output_padding():
    # Keras 3: Conv3DTranspose(filters, kernel_size, strides, padding, data_format, output_padding)
    info = one_layer((3, 3, 3, 1), "Conv3DTranspose(2, 3, 2, 'valid', None, 1)")
    assert info.layer["output_padding"] == (1, 1, 1) and info.output_shape == (8, 8, 8, 2)
    info = one_layer((3, 3, 1), "Conv2DTranspose(2, 3, 2, 'valid', 1)")
    assert info.layer["output_padding"] == (1, 1) and info.output_shape == (8, 8, 2)


def test_defaults_follow_keras():
    assert one_layer((5, 4, 3), "Conv2DTranspose(1, 1)").layer["activation"] == "linear"
    assert one_layer((5, 4, 3), "UpSampling2D()").layer["interpolation"] == "nearest"
    assert one_layer((5, 4, 3), "UpSampling2D(interpolation='BILINEAR')").layer["interpolation"] == "bilinear"
    assert one_layer((5, 4, 3), "Resizing(2, 2)").layer["interpolation"] == "bilinear"
    assert one_layer((5, 4, 3), "Cropping2D()").layer["cropping"] == ((0, 0), (0, 0))
    assert one_layer((5, 4, 3, 2), "Cropping3D()").layer["cropping"] == ((1, 1),) * 3
    assert one_layer((5, 3), "Cropping1D()").layer["cropping"] == ((1, 1),)
    names = [i.name for i in check_text("input (4, 4, 2)\nConv2DTranspose(2, 2)\nUpSampling2D()\n"
                                        "Cropping2D(1)\nResizing(3, 3)\nConv2DTranspose(1, 1)\n")
             .analysis.infos]
    assert names == ["conv2d_transpose", "up_sampling2d", "cropping2d", "resizing", "conv2d_transpose_1"]


@pytest.mark.parametrize("n,k,s,d,padding,op,expected", [
    (5, 3, 1, 1, "valid", None, 7), (5, 2, 3, 1, "valid", None, 15), (5, 2, 3, 1, "valid", 0, 14),
    (5, 3, 2, 1, "same", None, 10), (5, 3, 2, 1, "same", 0, 9), (5, 4, 3, 1, "same", 2, 14),
    (5, 3, 1, 2, "valid", None, 9), (None, 3, 2, 1, "valid", None, None),
])
def test_deconv_output_length(n, k, s, d, padding, op, expected):
    assert sh.deconv_output_length(n, k, s, d, padding, op) == expected


@pytest.mark.parametrize("k,s,d,padding,op,expected", [
    (3, 2, 1, "valid", None, (0, 0)), (2, 3, 1, "valid", None, (0, -1)),  # one trailing output gets only the bias
    (3, 2, 1, "same", None, (0, 1)), (4, 2, 1, "same", None, (1, 1)), (4, 1, 1, "same", None, (1, 2)),
    (3, 2, 1, "same", 0, (1, 1)), (2, 3, 1, "same", 2, (0, 0)), (1, 3, 1, "same", 2, (0, -2)),
    (3, 1, 2, "same", None, (2, 2)),
])
def test_deconv_pads(k, s, d, padding, op, expected):
    assert sh.deconv_pads(k, s, d, padding, op) == expected


# --- refusals --------------------------------------------------------------------------

@pytest.mark.parametrize("input_shape,line,fragment", [
    ((5, 4, 3), "Conv2DTranspose(2, 3, strides=2, output_padding=2)", "must be smaller than strides"),
    ((5, 4, 3), "Conv2DTranspose(2, 3, strides=2, dilation_rate=2)", "cannot be combined"),
    ((5, 4, 3), "Conv2DTranspose(2, 2, padding='same', output_padding=0)", "has no valid output length"),
    ((5, 3), "Conv1DTranspose(2, 3, padding='causal')", "must be one of 'valid', 'same'"),
    ((5, 3), "Conv2DTranspose(2, 3)", "expects a 4-D input"),
    ((5, 4, 3), "Conv2DTranspose(2, 3, groups=2)", "groups"),
    ((5, 3), "UpSampling1D(2.0)", "must be an integer"),
    ((5, 4, 3), "UpSampling2D(interpolation='bicubic')", "cnnc does not support interpolation='bicubic'"),
    ((5, 4, 3), "UpSampling2D(interpolation='cubic')", "must be one of"),
    ((5, 4, 3), "UpSampling3D()", "expects a 5-D input"),
    ((5, 3), "Cropping1D((2, 3))", "leaves nothing of the steps axis: 5 - 2 - 3 = 0"),
    ((5, 4, 3), "Cropping2D(((0, 0), (2, 2)))", "leaves nothing of the width axis: 4 - 2 - 2 = 0"),
    ((2, 4, 5, 1), "Cropping3D()", "leaves nothing of the depth axis: 2 - 1 - 1 = 0"),
    ((5, 4, 3), "Cropping2D(-1)", ">= 0"),
    ((5, 4, 3), "Resizing(3.0, 4)", "must be an integer"),
    ((5, 4, 3), "Resizing(0, 4)", "positive"),
    ((5, 4, 3), "Resizing(3, 4, interpolation='Bilinear')", "must be one of"),
    ((5, 4, 3), "Resizing(3, 4, interpolation='area')", "cnnc does not support interpolation='area'"),
    ((5, 4, 3), "Resizing(3, 4, crop_to_aspect_ratio=True)", "crop_to_aspect_ratio=True"),
    ((5, 4, 3), "Resizing(3, 4, antialias=True)", "antialias=True"),
    ((5, 4, 3), "Resizing(3, 4, fill_mode='reflect')", "fill_mode"),
    ((5, 4), "Resizing(3, 4)", "expects a 4-D input"),
])
def test_refused(input_shape, line, fragment):
    checked = check_text(f"input {input_shape}\n{line}\n")
    assert not checked.ok
    assert any(fragment in d.message for d in checked.diagnostics), [d.message for d in checked.diagnostics]


# --- forward values by hand -------------------------------------------------------------

def _forward(shape, line, weights, x):
    model = cnnc.loads(f"model f\ninput {shape}\n{line}\n")
    name = model.analysis.infos[0].name
    w = {f"{name}/{k}": np.asarray(v, np.float64) for k, v in weights.items()}
    return Network(model.analysis, w).forward(np.asarray(x, np.float64))


def test_conv1d_transpose_by_hand():
    x = [[[1.0], [2.0]]]
    k = np.array([10.0, 1.0]).reshape(2, 1, 1)
    # each input spreads x*w over the taps, s apart: [10, 1, 20, 2]
    y = _forward((2, 1), "Conv1DTranspose(1, 2, strides=2)", {"kernel": k, "bias": [0.5]}, x)
    np.testing.assert_allclose(y[0, :, 0], [10.5, 1.5, 20.5, 2.5])
    # strides 3 > kernel 2: a gap between the inputs' copies and one trailing output
    y = _forward((2, 1), "Conv1DTranspose(1, 2, strides=3)", {"kernel": k, "bias": [0.0]}, x)
    np.testing.assert_allclose(y[0, :, 0], [10, 1, 0, 20, 2, 0])
    # 'same', k=3, s=2: full = [x0w0, x0w1, x0w2+x1w0, x1w1, x1w2], TF keeps the first 4
    k3 = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    y = _forward((2, 1), "Conv1DTranspose(1, 3, strides=2, padding='same', use_bias=False)",
                 {"kernel": k3}, x)
    np.testing.assert_allclose(y[0, :, 0], [1, 10, 102, 20])
    # 'same' with output_padding=0: length (2-1)*2 + 1 + 0 = 3, crop (1, 1) of the full 5
    y = _forward((2, 1), "Conv1DTranspose(1, 3, strides=2, padding='same', output_padding=0, "
                 "use_bias=False)", {"kernel": k3}, x)
    np.testing.assert_allclose(y[0, :, 0], [10, 102, 20])


def test_conv2d_transpose_kernel_is_filters_then_channels():
    # 1x1 kernel, 2 input channels, 3 filters: y[..., f] = sum_c x[..., c] * kernel[0, 0, f, c]
    k = np.arange(6.0).reshape(1, 1, 3, 2)
    x = np.array([[[[1.0, 10.0]]]])
    y = _forward((1, 1, 2), "Conv2DTranspose(3, 1, use_bias=False)", {"kernel": k}, x)
    np.testing.assert_allclose(y[0, 0, 0], [0 + 10, 2 + 30, 4 + 50])


def test_up_sampling_by_hand():
    x = np.array([[[1.0], [2.0]]])
    np.testing.assert_allclose(_forward((2, 1), "UpSampling1D(3)", {}, x)[0, :, 0], [1, 1, 1, 2, 2, 2])
    img = np.array([[[[1.0], [2.0]], [[3.0], [4.0]]]])
    y = _forward((2, 2, 1), "UpSampling2D((1, 2))", {}, img)
    np.testing.assert_allclose(y[0, :, :, 0], [[1, 1, 2, 2], [3, 3, 4, 4]])
    # bilinear, half-pixel: width 2 -> 4 samples -0.25, 0.25, 0.75, 1.25 (clamped at the edges)
    row = np.array([[[[0.0], [4.0]]]])
    y = _forward((1, 2, 1), "UpSampling2D((1, 2), interpolation='bilinear')", {}, row)
    np.testing.assert_allclose(y[0, 0, :, 0], [0, 1, 3, 4])


def test_resizing_by_hand():
    row = np.arange(4.0).reshape(1, 1, 4, 1)
    # nearest 4 -> 3: floor((o + 0.5) * 4/3) = 0, 2, 3
    y = _forward((1, 4, 1), "Resizing(1, 3, interpolation='nearest')", {}, row)
    np.testing.assert_allclose(y[0, 0, :, 0], [0, 2, 3])
    # bilinear 4 -> 2: (o + 0.5) * 2 - 0.5 = 0.5, 2.5
    y = _forward((1, 4, 1), "Resizing(1, 2)", {}, row)
    np.testing.assert_allclose(y[0, 0, :, 0], [0.5, 2.5])


def test_cropping_by_hand():
    x = np.arange(6.0).reshape(1, 6, 1)
    np.testing.assert_allclose(_forward((6, 1), "Cropping1D((1, 2))", {}, x)[0, :, 0], [1, 2, 3])
    img = np.arange(12.0).reshape(1, 3, 4, 1)
    y = _forward((3, 4, 1), "Cropping2D(((1, 0), (1, 2)))", {}, img)
    np.testing.assert_allclose(y[0, :, :, 0], [[5], [9]])


# --- gradients ----------------------------------------------------------------------------

GRADIENT_CASES = {
    "deconv2d_valid": ((4, 3, 2), ["Conv2DTranspose(3, (3, 2))"]),
    "deconv2d_same_strides": ((4, 3, 2), ["Conv2DTranspose(3, (3, 4), strides=(2, 3), padding='same')"]),
    "deconv2d_output_padding": ((3, 3, 2), ["Conv2DTranspose(2, 3, strides=2, padding='same', "
                                            "output_padding=(0, 1), activation='tanh')"]),
    "deconv1d_gap": ((4, 2), ["Conv1DTranspose(2, 2, strides=3, output_padding=2)"]),
    "deconv1d_dilated_nobias": ((5, 3), ["Conv1DTranspose(2, 3, dilation_rate=2, padding='same', use_bias=False)"]),
    "deconv3d": ((2, 3, 2, 2), ["Conv3DTranspose(2, (2, 3, 2), strides=(1, 2, 2), padding='same')"]),
    "deconv_frozen": ((3, 3, 2), ["Conv2DTranspose(2, 2, trainable=False)", "Conv2DTranspose(1, 2, strides=2)"]),
    "up1d": ((4, 2), ["UpSampling1D(3)", "Conv1D(2, 2)"]),
    "up2d_nearest": ((3, 2, 2), ["Conv2D(2, 1)", "UpSampling2D((2, 3))"]),
    "up2d_bilinear": ((3, 4, 2), ["UpSampling2D((3, 2), interpolation='bilinear')"]),
    "up3d": ((2, 2, 2, 2), ["UpSampling3D((1, 2, 3))"]),
    "crop1d": ((6, 2), ["Cropping1D((2, 1))", "Dense(2)"]),
    "crop2d": ((5, 6, 2), ["Conv2D(2, 1)", "Cropping2D(((1, 0), (2, 1)))"]),
    "crop3d": ((3, 4, 4, 1), ["Cropping3D(((0, 1), 1, (1, 0)))"]),
    "resize_bilinear_up": ((3, 4, 2), ["Resizing(7, 5)"]),
    "resize_bilinear_down": ((7, 6, 2), ["Resizing(3, 4)"]),
    "resize_nearest": ((5, 4, 2), ["Resizing(3, 9, interpolation='nearest')"]),
    "decoder": ((4, 4, 3), ["Conv2D(4, 3, strides=2, padding='same', activation='relu')",
                            "Conv2DTranspose(3, 3, strides=2, padding='same', activation='sigmoid')",
                            "Cropping2D(1)", "UpSampling2D()"]),
}


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_gradients(name):
    shape, lines = GRADIENT_CASES[name]
    check_gradients(shape, lines)


# --- ONNX ------------------------------------------------------------------------------------

INPUTS = {1: "input (11, 3)", 2: "input (9, 8, 3)", 3: "input (5, 6, 4, 2)"}


def _deconv_onnx_cases():
    for r, k in ((1, "3"), (1, "4"), (2, "(3, 2)"), (3, "(3, 2, 2)")):
        for s, pad, op in ((1, "valid", None), (2, "valid", None), (3, "valid", 2), (2, "same", None),
                           (3, "same", 1), (2, "same", 0)):
            if pad == "same" and op == 0 and any(c in "24" for c in k):
                continue
            extra = "" if op is None else f", output_padding={op}"
            yield (f"conv{r}d_transpose-k{k}-s{s}-{pad}-op{op}",
                   f"{INPUTS[r]}\nConv{r}DTranspose(4, {k}, strides={s}, padding='{pad}'{extra})")
        yield (f"conv{r}d_transpose-dilated",
               f"{INPUTS[r]}\nConv{r}DTranspose(2, {k}, dilation_rate=2, padding='same', use_bias=False, "
               f"activation='relu')")
        # after a Conv the tensor arrives channels-first
        yield (f"conv{r}d_transpose-after-conv",
               f"{INPUTS[r]}\nConv{r}D(3, 1)\nConv{r}DTranspose(2, {k}, strides=2, activation='softmax')")


ONNX_CASES = [
    *_deconv_onnx_cases(),
    ("up1d", f"{INPUTS[1]}\nUpSampling1D(3)"),
    ("up1d-cf", f"{INPUTS[1]}\nConv1D(2, 1)\nUpSampling1D()\nConv1D(2, 3)"),
    ("up2d-nearest-cl", f"{INPUTS[2]}\nUpSampling2D((2, 3))"),
    ("up2d-nearest-cf", f"{INPUTS[2]}\nConv2D(2, 1)\nUpSampling2D((3, 1))"),
    ("up2d-bilinear", f"{INPUTS[2]}\nUpSampling2D((2, 3), interpolation='bilinear')"),
    ("up2d-bilinear-cf", f"{INPUTS[2]}\nConv2D(2, 1)\nUpSampling2D(interpolation='bilinear')\nFlatten()\nDense(3)"),
    ("up3d", f"{INPUTS[3]}\nUpSampling3D((1, 2, 3))"),
    ("up3d-cf", f"{INPUTS[3]}\nConv3D(2, 1)\nUpSampling3D()"),
    ("crop1d", f"{INPUTS[1]}\nCropping1D((2, 0))"),
    ("crop2d-cl", f"{INPUTS[2]}\nCropping2D(((1, 2), (0, 3)))"),
    ("crop2d-cf", f"{INPUTS[2]}\nConv2D(2, 1)\nCropping2D(1)\nConv2D(2, 2)"),
    ("crop3d", f"{INPUTS[3]}\nCropping3D(((1, 0), (0, 2), 1))"),
    ("crop3d-cf", f"{INPUTS[3]}\nConv3D(2, 1)\nCropping3D()"),
    ("resize-bilinear-up", f"{INPUTS[2]}\nResizing(13, 17)"),
    ("resize-bilinear-down", f"{INPUTS[2]}\nResizing(4, 3)"),
    ("resize-bilinear-cf", f"{INPUTS[2]}\nConv2D(2, 1)\nResizing(5, 11)"),
    ("resize-nearest-cl", f"{INPUTS[2]}\nResizing(7, 13, interpolation='nearest')"),
    ("resize-nearest-cf", f"{INPUTS[2]}\nConv2D(2, 1)\nResizing(3, 8, interpolation='nearest')"),
    ("resize-same-size", f"{INPUTS[2]}\nResizing(9, 8, interpolation='nearest')"),
    ("decoder", "input (8, 8, 3)\nConv2D(4, 3, strides=2, padding='same', activation='relu')\n"
                "Conv2DTranspose(3, 3, strides=2, padding='same')\nCropping2D(1)\n"
                "UpSampling2D(interpolation='bilinear')\nResizing(8, 8)"),
]


@pytest.mark.parametrize("opset", sorted({MIN_OPSET, MAX_OPSET}))
@pytest.mark.parametrize("body", [c[1] for c in ONNX_CASES], ids=[c[0] for c in ONNX_CASES])
def test_onnx_matches_reference(body, opset):
    check_parity(body, opset=opset)


UNKNOWN_SIZE_CASES = [
    ("deconv1d-same", "input (None, 3)\nConv1DTranspose(4, 3, strides=2, padding='same')", (7, 3)),
    ("deconv2d-gap", "input (None, None, 2)\nConv2DTranspose(2, 2, strides=3, output_padding=(1, 2))",
     (4, 5, 2)),
    ("up2d-nearest", "input (None, None, 2)\nUpSampling2D((2, 3))", (4, 5, 2)),
    ("up2d-bilinear-cf", "input (None, 4, 2)\nConv2D(2, 1)\nUpSampling2D(interpolation='bilinear')", (5, 4, 2)),
    ("crop2d", "input (None, None, 2)\nCropping2D(((1, 2), (0, 1)))", (6, 5, 2)),
    ("resize-bilinear", "input (None, None, 2)\nResizing(6, 7)", (4, 9, 2)),
    ("resize-nearest", "input (None, None, 2)\nResizing(6, 7, interpolation='nearest')", (4, 9, 2)),
]


@pytest.mark.parametrize("body,sample", [c[1:] for c in UNKNOWN_SIZE_CASES],
                         ids=[c[0] for c in UNKNOWN_SIZE_CASES])
def test_onnx_unknown_sizes(body, sample):
    lowered = check_parity(body, sample=sample)
    dims = lowered.proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"


def test_onnx_conv_transpose_attributes():
    """TF's 'same' crop becomes pads; the trailing bias-only outputs, output_padding."""
    lowered = check_parity("input (5, 4, 3)\nConv2DTranspose(2, (4, 1), strides=3, padding='same', "
                           "output_padding=(1, 2))")
    (node,) = [n for n in lowered.proto.graph.node if n.op_type == "ConvTranspose"]
    attrs = {a.name: list(a.ints) for a in node.attribute}
    # height: K=4, s=3, op=1: (n-1)*3 + 0 + 1 long, 3 short of the full (n-1)*3 + 4: crop 1 before,
    # 2 after; width: K=1, op=2: (n-1)*3 + 1 + 2, 2 past the full (n-1)*3 + 1
    assert attrs["pads"] == [1, 0, 2, 0] and attrs["output_padding"] == [0, 2]


def test_onnx_unknown_sizes_need_opset_14():
    """Only from opset 14 can ONNX shape inference carry the symbolic batch through the
    run-time `sizes` of Resize; cnnc says so instead of writing an unverifiable graph."""
    from cnnc.support.diagnostics import UsageError
    with pytest.raises(UsageError, match="opset 14 or later"):
        check_parity("input (None, None, 2)\nResizing(6, 7)", sample=(4, 9, 2), opset=13)
    check_parity("input (5, 6, 2)\nResizing(6, 7)", opset=13)     # known sizes: Gathers
