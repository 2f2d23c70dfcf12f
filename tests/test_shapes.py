"""Output shapes and parameter counts of every layer kind, against numbers
worked out by hand from Keras's formulas (written next to each case).

conv 'valid': floor((n - d*(k-1) - 1)/s) + 1     conv 'same'/'causal': ceil(n/s)
pool 'valid': floor((n - p)/s) + 1, s defaults to p     pool 'same': ceil(n/s)
Conv params k*C*F + F; Depthwise k*C*m + C*m; Separable k*C*m + C*m*F + F;
Dense in*units + units; BatchNormalization 4C (2C non-trainable).
"""

from __future__ import annotations

import pytest

import cnnc
from cnnc.analysis import shapes as sh
from cnnc.frontends.cnn import check_text


def one_layer(input_shape: tuple, line: str):
    text = f"input {input_shape}\n{line}\n"
    checked = check_text(text)
    assert checked.ok, "\n".join(d.message for d in checked.diagnostics)
    (info,) = checked.analysis.infos
    return info


# (input, layer, output, params) — the arithmetic in the comment.
CASES = [
    # Conv2D
    ((28, 28, 1), "Conv2D(32, (3, 3))", (26, 26, 32), 320),                       # 28-3+1; 9*1*32+32
    ((28, 28, 1), "Conv2D(32, 3, padding='same')", (28, 28, 32), 320),
    ((28, 28, 3), "Conv2D(16, (5, 5), strides=2)", (12, 12, 16), 1216),            # floor(23/2)+1; 25*3*16+16
    ((28, 28, 3), "Conv2D(16, (5, 5), strides=2, padding='same')", (14, 14, 16), 1216),  # ceil(28/2)
    ((32, 32, 3), "Conv2D(8, (3, 3), dilation_rate=2)", (28, 28, 8), 224),         # 32-2*2-1+1; 27*8+8
    ((7, 9, 4), "Conv2D(6, (2, 4), strides=(2, 3))", (3, 2, 6), 198),              # floor(5/2)+1, floor(5/3)+1; 32*6+6
    ((7, 9, 4), "Conv2D(6, (2, 4), strides=(2, 3), padding='same')", (4, 3, 6), 198),  # ceil(7/2), ceil(9/3)
    ((10, 10, 2), "Conv2D(4, 3, use_bias=False)", (8, 8, 4), 72),                  # 9*2*4
    ((5, 5, 1), "Conv2D(2, 5)", (1, 1, 2), 52),                                    # exactly fits; 25*2+2
    # Conv1D
    ((128, 9), "Conv1D(64, 3)", (126, 64), 1792),                                  # 3*9*64+64
    ((100, 4), "Conv1D(8, 5, strides=3, padding='causal')", (34, 8), 168),          # ceil(100/3); 20*8+8
    ((50, 2), "Conv1D(4, 3, dilation_rate=4)", (42, 4), 28),                       # 50-4*2-1+1; 6*4+4
    ((50, 2), "Conv1D(4, 3, dilation_rate=4, padding='causal')", (50, 4), 28),
    # Conv3D
    ((16, 16, 16, 3), "Conv3D(16, (3, 3, 3))", (14, 14, 14, 16), 1312),            # 27*3*16+16
    ((10, 12, 14, 2), "Conv3D(4, (2, 3, 4), strides=(1, 2, 3), padding='same')", (10, 6, 5, 4), 196),
    # DepthwiseConv
    ((32, 32, 3), "DepthwiseConv2D((3, 3))", (30, 30, 3), 30),                     # 9*3*1+3
    ((32, 32, 8), "DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding='same')", (16, 16, 16), 160),
    ((20, 5), "DepthwiseConv1D(4, depth_multiplier=3, use_bias=False)", (17, 15), 60),  # 4*5*3
    # SeparableConv
    ((32, 32, 3), "SeparableConv2D(16, (3, 3))", (30, 30, 16), 91),                # 27 + 3*16 + 16
    ((16, 16, 32), "SeparableConv2D(64, 3, padding='same', depth_multiplier=2, use_bias=False)",
     (16, 16, 64), 4672),                                                          # 9*32*2 + 64*64
    ((62, 64), "SeparableConv1D(32, 5, padding='same', depth_multiplier=2)", (62, 32), 4768),  # 640+4096+32
    ((9, 9, 2), "SeparableConv2D(3, 3, dilation_rate=2)", (5, 5, 3), 27),           # 9-4; 18 + 6 + 3
    # Pooling
    ((26, 26, 32), "MaxPooling2D((2, 2))", (13, 13, 32), 0),
    ((11, 11, 64), "MaxPooling2D((2, 2))", (5, 5, 64), 0),                          # floor(9/2)+1
    ((11, 11, 64), "MaxPooling2D((2, 2), padding='same')", (6, 6, 64), 0),           # ceil(11/2)
    ((10, 10, 3), "MaxPooling2D((3, 3), strides=(2, 2))", (4, 4, 3), 0),            # floor(7/2)+1
    ((10, 10, 3), "AveragePooling2D(3, strides=1)", (8, 8, 3), 0),
    ((9, 9, 3), "AveragePooling2D((2, 2))", (4, 4, 3), 0),
    ((7, 10, 3), "AveragePooling2D((2, 3), strides=(3, 1), padding='same')", (3, 10, 3), 0),
    ((100, 8), "MaxPooling1D()", (50, 8), 0),
    ((100, 8), "MaxPooling1D(3)", (33, 8), 0),                                     # floor(97/3)+1
    ((16, 16, 16, 3), "MaxPooling3D()", (8, 8, 8, 3), 0),
    ((5, 5, 5, 2), "AveragePooling3D(pool_size=2, padding='same')", (3, 3, 3, 2), 0),
    # Global pooling
    ((8, 8, 128), "GlobalAveragePooling2D()", (128,), 0),
    ((8, 8, 128), "GlobalMaxPooling2D(keepdims=True)", (1, 1, 128), 0),
    ((62, 32), "GlobalMaxPooling1D()", (32,), 0),
    ((4, 4, 4, 6), "GlobalAveragePooling3D(keepdims=True)", (1, 1, 1, 6), 0),
    # Flatten, Dense
    ((3, 3, 64), "Flatten()", (576,), 0),
    ((5,), "Flatten()", (5,), 0),
    ((576,), "Dense(64)", (64,), 36928),                                           # 576*64+64
    ((5, 7, 3), "Dense(4)", (5, 7, 4), 16),                                        # last axis: 3*4+4
    ((10,), "Dense(3, use_bias=False)", (3,), 30),
    # BatchNormalization
    ((26, 26, 32), "BatchNormalization()", (26, 26, 32), 128),                      # 4*32
    ((26, 26, 32), "BatchNormalization(center=False)", (26, 26, 32), 96),
    ((5, 7, 3), "BatchNormalization(axis=1)", (5, 7, 3), 20),                       # axis 1 has 5
    ((10,), "BatchNormalization()", (10,), 40),
    # ZeroPadding
    ((28, 28, 1), "ZeroPadding2D()", (30, 30, 1), 0),
    ((28, 28, 1), "ZeroPadding2D((1, 2))", (30, 32, 1), 0),
    ((28, 28, 1), "ZeroPadding2D(((1, 0), (2, 3)))", (29, 33, 1), 0),
    ((10, 3), "ZeroPadding1D((2, 0))", (12, 3), 0),
    ((4, 4, 4, 2), "ZeroPadding3D(1)", (6, 6, 6, 2), 0),
    # Reshape, Dropout, Activation
    ((26, 26, 8), "Reshape((-1, 8))", (676, 8), 0),
    ((26, 26, 8), "Reshape((13, 52, 8))", (13, 52, 8), 0),
    ((26, 26, 8), "Dropout(0.5)", (26, 26, 8), 0),
    ((26, 26, 8), "SpatialDropout2D(0.2)", (26, 26, 8), 0),
    ((26, 8), "SpatialDropout1D(0.2)", (26, 8), 0),
    ((26, 26, 8), "Activation('relu')", (26, 26, 8), 0),
]


@pytest.mark.parametrize("input_shape,line,output,params", CASES, ids=[c[1] for c in CASES])
def test_layer_shape_and_params(input_shape, line, output, params):
    info = one_layer(input_shape, line)
    assert info.output_shape == output
    assert info.params == params


def test_batchnorm_trainable_split():
    info = one_layer((26, 26, 32), "BatchNormalization()")
    assert (info.trainable_params, info.non_trainable_params) == (64, 64)
    info = one_layer((26, 26, 32), "BatchNormalization(center=False, scale=False)")
    assert (info.trainable_params, info.non_trainable_params) == (0, 64)
    info = one_layer((26, 26, 32), "BatchNormalization(trainable=False)")
    assert (info.trainable_params, info.non_trainable_params) == (0, 128)
    info = one_layer((26, 26, 3), "Conv2D(4, 3, trainable=False)")
    assert (info.trainable_params, info.non_trainable_params) == (0, 112)


def test_weight_shapes_follow_keras_layouts():
    w = {w.name: w.shape for w in one_layer((32, 32, 8), "SeparableConv2D(16, (3, 5), depth_multiplier=2)").weights}
    assert w == {"depthwise_kernel": (3, 5, 8, 2), "pointwise_kernel": (1, 1, 16, 16), "bias": (16,)}
    w = [(w.name, w.shape) for w in one_layer((9, 9, 4), "DepthwiseConv2D(3, depth_multiplier=3)").weights]
    assert w == [("kernel", (3, 3, 4, 3)), ("bias", (12,))]
    w = [(w.name, w.shape) for w in one_layer((10, 6), "Conv1D(5, 3)").weights]
    assert w == [("kernel", (3, 6, 5)), ("bias", (5,))]
    w = [w.name for w in one_layer((4, 4, 2), "BatchNormalization()").weights]
    assert w == ["gamma", "beta", "moving_mean", "moving_variance"]


def test_mnist_numbers_are_keras_numbers(in_repo):
    m = cnnc.load("examples/mnist.cnn")
    assert [l.output_shape for l in m.layers] == [
        (26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (3, 3, 64), (576,), (64,), (64,), (10,)]
    assert [l.params for l in m.layers] == [320, 0, 18496, 0, 36928, 0, 36928, 0, 650]
    assert (m.total_params, m.trainable_params, m.non_trainable_params) == (93322, 93322, 0)
    assert [l.name for l in m.layers] == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1",
                                          "conv2d_2", "flatten", "dense", "dropout", "dense_1"]
    assert m.input_shape == (None, 28, 28, 1) and m.output_shape == (None, 10)


def test_macs_and_receptive_field():
    info = one_layer((28, 28, 1), "Conv2D(32, (3, 3))")
    assert info.macs == 26 * 26 * 9 * 1 * 32
    info = one_layer((16, 16, 32), "SeparableConv2D(64, 3, padding='same', depth_multiplier=2)")
    assert info.macs == 16 * 16 * (9 * 32 * 2 + 64 * 64)
    checked = check_text("input (32, 32, 3)\nConv2D(8, 3)\nMaxPooling2D(2)\nConv2D(8, 3, dilation_rate=2)\n")
    rf = [(i.output.rf, i.output.jump) for i in checked.analysis.infos]
    # rf += (k_eff - 1) * jump; jump *= s
    assert rf == [((3, 3), (1, 1)), ((4, 4), (2, 2)), ((12, 12), (2, 2))]


# --- the pure functions --------------------------------------------------------

@pytest.mark.parametrize("n,k,s,d,padding,expected", [
    (28, 3, 1, 1, "valid", 26), (28, 3, 2, 1, "valid", 13), (28, 3, 2, 1, "same", 14),
    (7, 2, 2, 1, "valid", 3), (7, 2, 2, 1, "same", 4), (32, 3, 1, 2, "valid", 28),
    (3, 5, 1, 1, "valid", -1), (4, 3, 1, 2, "valid", 0), (None, 3, 1, 1, "valid", None),
    (100, 5, 3, 1, "causal", 34),
])
def test_conv_output_length(n, k, s, d, padding, expected):
    assert sh.conv_output_length(n, k, s, d, padding) == expected


@pytest.mark.parametrize("n,k,s,d,expected", [
    (5, 3, 1, 1, (1, 1)), (5, 2, 1, 1, (0, 1)),   # even kernel: the extra pixel goes after
    (7, 2, 2, 1, (0, 1)), (6, 3, 2, 1, (0, 1)), (5, 3, 2, 1, (1, 1)), (5, 3, 1, 2, (2, 2)),
    (4, 1, 2, 1, (0, 0)),
])
def test_same_pads_like_tensorflow(n, k, s, d, expected):
    assert sh.same_pads(n, k, s, d) == expected


def test_causal_pads():
    assert sh.causal_pads(3, 1) == (2, 0)
    assert sh.causal_pads(3, 4) == (8, 0)


# --- refusals (Keras refuses these stacks too) ---------------------------------

@pytest.mark.parametrize("input_shape,line,fragment", [
    ((2, 2, 1), "Conv2D(4, 3)", "needs at least 3x3, got 2x2"),
    ((1, 5, 3), "MaxPooling2D((2, 2))", "needs at least 2x2, got 1x5"),
    ((10, 3), "Conv2D(4, 3)", "expects a 4-D input"),
    ((8, 8, 3), "Conv2D(4, 3, strides=2, dilation_rate=2)", "cannot be combined"),
    ((8, 8, 3), "MaxPooling1D(2)", "expects a 3-D input"),
    ((8, 8, 3), "GlobalAveragePooling1D()", "expects a 3-D input"),
    ((8, 8, 3), "ZeroPadding3D(1)", "expects a 5-D input"),
    ((8, 8, 3), "SpatialDropout1D(0.1)", "expects a 3-D input"),
    ((4, 4, 3), "Conv2D(4, 3, dilation_rate=2)", "needs at least 5x5"),
    ((10,), "Reshape((3, 3))", "cannot fit 10 values"),
    ((10,), "Reshape((-1, 3))", "not a multiple of 3"),
    ((8, 8, 3), "BatchNormalization(axis=4)", "out of range"),
])
def test_refused_like_keras(input_shape, line, fragment):
    checked = check_text(f"input {input_shape}\n{line}\n")
    assert not checked.ok
    assert any(fragment in d.message for d in checked.diagnostics), [d.message for d in checked.diagnostics]
