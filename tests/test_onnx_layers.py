"""Every layer kind and activation lowered to ONNX: onnxruntime's output equals the
NumPy reference forward (cnnc.reference.network) on random weights, and onnx's own
ReferenceEvaluator agrees (tolerance 1e-5 relative to the output's scale).

Input sizes are small and odd/even mixed so that TensorFlow's asymmetric 'same'
padding (the odd pixel after) is exercised.
"""

from __future__ import annotations

import itertools

import pytest

from cnnc.analysis import activations, kinds
from cnnc.backends.onnx import MAX_OPSET, MIN_OPSET
from cnnc.backends.onnx import activations as lower_activations
from cnnc.backends.onnx import registry as lower_layers

from .onnx_helpers import check_parity

INPUTS = {1: "input (11, 3)", 2: "input (9, 8, 3)", 3: "input (7, 6, 5, 2)"}
SPATIAL = {1: "(11, 3)", 2: "(9, 8, 3)", 3: "(7, 6, 5, 2)"}


def _stride_dilation():
    return [(1, 1), (2, 1), (1, 2)]   # Keras refuses strides > 1 together with dilation > 1


def _conv_cases():
    for r in (1, 2, 3):
        pads = ["valid", "same"] + (["causal"] if r == 1 else [])
        for pad, (s, d), bias in itertools.product(pads, _stride_dilation(), (True, False)):
            k = "(3, 2, 2)" if r == 3 else ("(3, 2)" if r == 2 else "3")
            yield (f"conv{r}d-{pad}-s{s}-d{d}-bias{int(bias)}",
                   f"{INPUTS[r]}\nConv{r}D(4, {k}, strides={s}, dilation_rate={d}, "
                   f"padding='{pad}', use_bias={bias})")


def _depthwise_cases():
    for kind, r in itertools.product(("DepthwiseConv", "SeparableConv"), (1, 2)):
        for pad, (s, d), dm, bias in itertools.product(("valid", "same"), _stride_dilation(),
                                                         (1, 2), (True, False)):
            k = "(3, 2)" if r == 2 else "3"
            filters = "5, " if kind == "SeparableConv" else ""
            yield (f"{kind.lower()}{r}d-{pad}-s{s}-d{d}-dm{dm}-bias{int(bias)}",
                   f"{INPUTS[r]}\n{kind}{r}D({filters}{k}, strides={s}, dilation_rate={d}, "
                   f"padding='{pad}', depth_multiplier={dm}, use_bias={bias})")


def _pool_cases():
    for kind, r in itertools.product(("MaxPooling", "AveragePooling"), (1, 2, 3)):
        for pad, strides in itertools.product(("valid", "same"), (None, 1, 2)):
            size = "(3, 2, 2)" if r == 3 else ("(3, 2)" if r == 2 else "3")
            s = "" if strides is None else f", strides={strides}"
            yield (f"{kind.lower()}{r}d-{pad}-s{strides}",
                   f"{INPUTS[r]}\n{kind}{r}D({size}{s}, padding='{pad}')")


def _global_cases():
    for kind, r, keep in itertools.product(("GlobalMaxPooling", "GlobalAveragePooling"), (1, 2, 3),
                                           (False, True)):
        yield f"{kind.lower()}{r}d-keep{int(keep)}", f"{INPUTS[r]}\n{kind}{r}D(keepdims={keep})"
        # after a Conv the tensor is channels-first: the reduction axes move
        yield (f"{kind.lower()}{r}d-keep{int(keep)}-after-conv",
               f"{INPUTS[r]}\nConv{r}D(4, 1)\n{kind}{r}D(keepdims={keep})")


OTHER_CASES = [
    # Flatten: Dense after it (kernel rows permuted), Flatten as the output (materialised),
    # Flatten of a channels_last input, C == 1 (no permutation needed)
    ("flatten-dense", f"{INPUTS[2]}\nConv2D(4, 3)\nFlatten()\nDense(5)"),
    ("flatten-output", f"{INPUTS[2]}\nConv2D(4, 3)\nFlatten()"),
    ("flatten-softmax-output", f"{INPUTS[2]}\nConv2D(4, 3)\nFlatten()\nActivation('softmax')"),
    ("flatten-dropout-dense", f"{INPUTS[2]}\nConv2D(4, 3)\nFlatten()\nDropout(0.5)\nDense(5)"),
    ("flatten-bn-dense", f"{INPUTS[2]}\nConv2D(4, 3)\nFlatten()\nBatchNormalization()\nDense(5)"),
    ("flatten-reshape", f"{INPUTS[2]}\nConv2D(4, 3)\nFlatten()\nReshape((7, 24))"),
    ("flatten-input", f"{INPUTS[3]}\nFlatten()\nDense(4)"),
    ("flatten-c1", "input (6, 5, 1)\nConv2D(1, 2)\nFlatten()\nDense(3)"),
    ("flatten-1d", f"{INPUTS[1]}\nConv1D(4, 3)\nFlatten()\nDense(3)"),
    ("flatten-3d", f"{INPUTS[3]}\nConv3D(3, 2)\nFlatten()\nDense(3)"),
    ("flatten-flat", "input (7,)\nFlatten()\nDense(2)"),
    # Dense on rank > 2 acts on the channel axis
    ("dense-on-image-cf", f"{INPUTS[2]}\nConv2D(4, 3)\nDense(6, activation='softmax')"),
    ("dense-on-image-cl", f"{INPUTS[2]}\nDense(6, activation='log_softmax')"),
    ("dense-on-sequence", f"{INPUTS[1]}\nConv1D(4, 3)\nDense(2, use_bias=False)\nConv1D(3, 2)"),
    ("dense-no-bias", "input (7,)\nDense(3, use_bias=False, activation='tanh')"),
    # BatchNormalization: channel axis (BatchNormalization op) and other axes (Mul/Add)
    ("bn-cf", f"{INPUTS[2]}\nConv2D(4, 3)\nBatchNormalization()"),
    ("bn-cl", f"{INPUTS[2]}\nBatchNormalization()"),
    ("bn-flat", "input (7,)\nBatchNormalization(center=False)"),
    ("bn-axis1-cf", f"{INPUTS[2]}\nConv2D(4, 3)\nBatchNormalization(axis=1)"),
    ("bn-axis2-cl", f"{INPUTS[2]}\nBatchNormalization(axis=2, scale=False)"),
    ("bn-axis-2-cf-3d", f"{INPUTS[3]}\nConv3D(3, 2)\nBatchNormalization(axis=-2, epsilon=0.1)"),
    ("bn-1d", f"{INPUTS[1]}\nConv1D(4, 3)\nBatchNormalization(center=False, scale=False)"),
    ("bn-frozen", f"{INPUTS[2]}\nConv2D(4, 3)\nBatchNormalization(trainable=False)"),
    # ZeroPadding, before a Conv (channels-first) and on the raw input (channels_last)
    ("zeropad1d", f"{INPUTS[1]}\nZeroPadding1D((2, 1))\nConv1D(2, 3)"),
    ("zeropad2d-cf", f"{INPUTS[2]}\nConv2D(3, 1)\nZeroPadding2D(((1, 0), (2, 3)))"),
    ("zeropad2d-cl", f"{INPUTS[2]}\nZeroPadding2D(1)"),
    ("zeropad3d", f"{INPUTS[3]}\nZeroPadding3D((1, 0, 2))\nConv3D(2, 2)"),
    # Reshape sees Keras's element order
    ("reshape-after-conv", f"{INPUTS[2]}\nConv2D(4, 3)\nReshape((7, 24))\nConv1D(2, 3)"),
    ("reshape-minus1", f"{INPUTS[2]}\nReshape((-1, 6))"),
    ("reshape-to-image", "input (48,)\nReshape((4, 4, 3))\nConv2D(2, 2)"),
    # inference-time identities
    ("dropouts", f"{INPUTS[2]}\nDropout(0.5)\nSpatialDropout2D(0.3)\nConv2D(2, 3)\nDropout(0.2)"),
    ("dropout-only", "input (5,)\nDropout(0.5)"),
    ("spatial-dropout-1d", f"{INPUTS[1]}\nSpatialDropout1D(0.5)\nConv1D(2, 2)"),
    ("spatial-dropout-3d", f"{INPUTS[3]}\nConv3D(2, 2)\nSpatialDropout3D(0.5)"),
    # elementwise, normalisation and scaling layers (tests/test_layers_elementwise.py has more)
    ("elementwise-cf", f"{INPUTS[2]}\nConv2D(4, 3)\nReLU(0.8, 0.3, 0.2)\nLeakyReLU()\nPReLU(shared_axes=[1, 2])\n"
                       "ELU(0.5)\nIdentity()\nRescaling(0.5, 1.0)\nLayerScale(0.5, 4)\nSoftmax(axis=(1, 2))"),
    ("normalization-cl", f"{INPUTS[2]}\nNormalization(mean=[0.5, 1.0, -1.0], variance=[2.0, 1.0, 0.5])\nLayerNormalization()\nDropout(0.5, noise_shape=(None, 1, 1, None))"),
    # the tutorial shapes, small
    ("mnist-like", "input (12, 12, 1)\nConv2D(4, (3, 3), activation='relu')\nMaxPooling2D((2, 2))\n"
                   "Conv2D(6, 3, activation='relu')\nFlatten()\nDense(8, activation='relu')\n"
                   "Dropout(0.25)\nDense(3, activation='softmax')"),
    ("separable-like", "input (8, 8, 3)\nConv2D(4, 3, strides=2, padding='same', use_bias=False)\n"
                       "BatchNormalization()\nActivation('relu')\n"
                       "SeparableConv2D(6, 3, padding='same', depth_multiplier=2)\n"
                       "MaxPooling2D(3, strides=2, padding='same')\n"
                       "DepthwiseConv2D(3, padding='same')\nGlobalAveragePooling2D()\nDense(3)"),
]

# Graphs: merges in every layout combination (after Convs: channels_first; on the raw
# input: channels_last; after Flatten of a CF image: FLAT_CF; mixed ranks: Keras expands)
GRAPH_CASES = [
    ("add-cf", "inputs = Input(shape=(6, 6, 2))\na = Conv2D(3, 3)(inputs)\nb = Conv2D(3, 3)(inputs)\n"
               "y = Add()([a, b])"),
    ("add-mixed-layouts", "inputs = Input(shape=(6, 6, 3))\na = Conv2D(3, 1)(inputs)\n"
                          "y = Add()([inputs, a, a])"),
    ("subtract-broadcast", "inputs = Input(shape=(5, 5, 4))\na = Conv2D(4, 1)(inputs)\n"
                           "g = GlobalAveragePooling2D(keepdims=True)(a)\ny = Subtract()([a, g])"),
    ("multiply-se-gate", "inputs = Input(shape=(5, 5, 4))\na = Conv2D(4, 1)(inputs)\n"
                         "g = GlobalAveragePooling2D()(a)\ng = Dense(4, activation='sigmoid')(g)\n"
                         "g = Reshape((1, 1, 4))(g)\ny = Multiply()([a, g])"),
    ("multiply-mixed-rank", "inputs = Input(shape=(5, 5, 4))\na = Conv2D(4, 1)(inputs)\n"
                            "g = GlobalMaxPooling2D()(a)\ny = multiply([a, g])"),
    ("average-max-min", "inputs = Input(shape=(4, 4, 2))\na = Conv2D(2, 1)(inputs)\n"
                        "b = Conv2D(2, 1)(inputs)\nm = Maximum()([a, b, inputs])\n"
                        "n = Minimum()([a, b])\ny = Average()([m, n])"),
    ("flat-cf-merge", "inputs = Input(shape=(4, 4, 3))\na = Conv2D(2, 1)(inputs)\nf = Flatten()(a)\n"
                      "b = Conv2D(2, 1)(inputs)\ng = Flatten()(b)\ns = Add()([f, g])\nDense(3)"),
    ("concat-channels-cf", "inputs = Input(shape=(6, 6, 2))\na = Conv2D(3, 3, padding='same')(inputs)\n"
                           "y = Concatenate()([a, inputs])\nConv2D(2, 1)"),
    ("concat-spatial-axis", "inputs = Input(shape=(6, 5, 2))\na = Conv2D(3, 1)(inputs)\n"
                            "b = Conv2D(3, 1)(inputs)\ny = concatenate([a, b], axis=1)"),
    ("custom-scale", "inputs = Input(shape=(5, 5, 3))\na = Conv2D(3, 1)(inputs)\n"
                     "y = CustomScaleLayer(0.17)([inputs, a])"),
    ("concat-flat", "inputs = Input(shape=(4, 4, 2))\na = Conv2D(2, 1)(inputs)\nf = Flatten()(a)\n"
                    "g = GlobalAveragePooling2D()(a)\ny = Concatenate(axis=-1)([f, g])\nDense(2)"),
]

ALL_CASES = [*_conv_cases(), *_depthwise_cases(), *_pool_cases(), *_global_cases(), *OTHER_CASES,
             *GRAPH_CASES]
# transposed convolutions, up-sampling, cropping, resizing (at opsets 13 and 21 there)
from .test_layers_resample import ONNX_CASES as _RESAMPLE_CASES  # noqa: E402

ALL_CASES += _RESAMPLE_CASES
from .test_layers_augment import ONNX_CASES as _AUGMENT_CASES  # noqa: E402

ALL_CASES += _AUGMENT_CASES


@pytest.mark.parametrize("body", [c[1] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES])
def test_layer_matches_reference(body):
    check_parity(body)


@pytest.mark.parametrize("act", activations.SUPPORTED)
@pytest.mark.parametrize("opset", sorted({MIN_OPSET, 17, MAX_OPSET}))
def test_activation_matches_reference(act, opset):
    # on a flat Dense output (axis -1) and on a channels-first Conv output (axis 1)
    check_parity(f"input (6,)\nDense(5, activation='{act}')", opset=opset)
    check_parity(f"input (5, 4, 2)\nConv2D(3, 2, activation='{act}')", opset=opset)


# The ops whose form changes between opsets (ReduceMean/ReduceMax axes become an input at
# 18, BatchNormalization 9 -> 14 -> 15, Gelu/Mish/HardSwish appear) at both ends of the range.
OPSET_CASES = [*_global_cases(), *OTHER_CASES]


@pytest.mark.parametrize("opset", sorted({MIN_OPSET, MAX_OPSET}))
@pytest.mark.parametrize("body", [c[1] for c in OPSET_CASES], ids=[c[0] for c in OPSET_CASES])
def test_opset_ends(body, opset):
    lowered = check_parity(body, opset=opset)
    assert lowered.proto.opset_import[0].version == opset


UNKNOWN_SIZE_CASES = [
    ("conv1d-same", "input (None, 3)\nConv1D(4, 3, strides=2, padding='same')", (13, 3)),
    ("conv1d-causal", "input (None, 3)\nConv1D(4, 3, padding='causal', dilation_rate=2)", (10, 3)),
    ("conv1d-valid-pool-same", "input (None, 3)\nConv1D(4, 3)\nMaxPooling1D(2, padding='same')\n"
                               "AveragePooling1D(3, strides=2, padding='same')", (16, 3)),
    ("conv2d-global", "input (None, None, 2)\nConv2D(3, 3, padding='same')\n"
                      "GlobalMaxPooling2D()\nDense(2)", (7, 10, 2)),
    ("separable-same", "input (None, 3)\nSeparableConv1D(4, 3, padding='same', depth_multiplier=2)",
     (9, 3)),
]


@pytest.mark.parametrize("body,sample", [c[1:] for c in UNKNOWN_SIZE_CASES],
                         ids=[c[0] for c in UNKNOWN_SIZE_CASES])
def test_unknown_sizes_stay_symbolic(body, sample):
    lowered = check_parity(body, sample=sample)
    dims = lowered.proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"
    assert [bool(d.dim_param) for d in dims[1:-1]] == [True] * (len(dims) - 2)


def test_every_family_has_a_rule():
    assert set(lower_layers.RULES) == set(kinds.FAMILIES)


def test_every_activation_has_a_rule():
    assert set(lower_activations.RULES) == set(activations.SUPPORTED)


def test_cases_cover_every_layer_kind():
    written = " ".join(c[1] for c in ALL_CASES)
    missing = [k for k in kinds.KINDS if f"{k}(" not in written]
    assert not missing


@pytest.mark.parametrize("seed", range(60))
def test_random_stack_matches_reference(seed):
    """Random stacks of every layer kind (tests/keras_stacks.py), as a whole."""
    from cnnc.frontends.cnn import check_text

    from .keras_stacks import random_stack
    text = random_stack(seed)
    if not check_text(text, "s.cnn").ok:
        pytest.skip("a stack cnnc refuses")
    check_parity(text, seed=seed)
