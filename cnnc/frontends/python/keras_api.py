"""Keras's public names in every spelling scripts use: `keras`, `tensorflow.keras`,
`tf.keras`, Keras 2 module paths (`keras.layers.convolutional`), and what each
name is to the evaluator (a layer class, a model class, an optimizer, a dataset...)."""

from __future__ import annotations

from cnnc.analysis import kinds

# Keras 2 modules whose names Keras 3 keeps one level up.
KERAS2_MODULES = {
    ("keras", "layers"): {"convolutional", "core", "pooling", "normalization", "merge",
                          "advanced_activations", "recurrent", "embeddings", "noise", "wrappers",
                          "convolutional_recurrent", "local", "normalization_v2", "merging",
                          "reshaping", "regularization", "activation", "activations",
                          "preprocessing", "experimental", "attention", "rnn"},
    ("keras", "utils"): {"np_utils", "vis_utils", "data_utils", "generic_utils", "layer_utils"},
    ("keras", "optimizers"): {"legacy", "optimizer_v2"},   # keras.optimizers.schedules stays
}
ENGINE = {"engine", "topology", "training", "functional", "sequential", "input_layer",
          "base_layer"}
# Of these, the ones a script may still import (cnnc warns and reads them as their Keras 3
# names, as tools/script_truth.py shims them for the truth); importing any other Keras 2
# module fails in Keras 3, and cnnc says so as an error.
KEPT_KERAS2 = {("keras", "layers"): {"convolutional", "core", "pooling", "normalization", "merge",
                                     "advanced_activations", "experimental"},
               ("keras", "utils"): {"np_utils", "vis_utils", "data_utils", "generic_utils",
                                    "layer_utils", "conv_utils"},
               ("keras", "optimizers"): {"legacy", "optimizer_v2"},
               ("keras", "engine"): {"topology"}}
GONE_MODULES = {("keras", "backend"): {"tensorflow_backend", "theano_backend", "cntk_backend",
                                      "common", "load_backend"}}


def gone_in_keras3(path: tuple[str, ...]) -> bool:
    """Whether importing this Keras 2 module path fails in Keras 3 (ModuleNotFoundError)."""
    p = tuple(path)
    if p and p[0] in ("tf_keras", "keras_core"):
        return False
    if "keras" in p:
        p = p[len(p) - 1 - p[::-1].index("keras"):]
    if len(p) < 3:
        return False
    head, mod = p[:2], p[2]
    if head in GONE_MODULES and mod in GONE_MODULES[head]:
        return True
    if head in KERAS2_MODULES and mod in KERAS2_MODULES[head]:
        return mod not in KEPT_KERAS2.get(head, ())
    if head == ("keras", "engine"):
        return mod not in KEPT_KERAS2[head] and mod[:1].islower() and mod in ENGINE
    return False

LAYER_NAMES = frozenset(kinds.all_layer_names()) | kinds.KERAS_OTHER_LAYERS | frozenset(
    kinds.APPLICATION_LAYERS) | frozenset({
        "Layer", "InputSpec", "Merge", "AtrousConvolution2D", "AtrousConvolution1D",
        "Highway", "MaxoutDense", "ThresholdedReLU", "LocallyConnected1D", "Cropping",
        "RandomHeight", "RandomWidth", "RandomBrightness", "Rescaling", "Conv2DTranspose",
        "SimpleRNNCell", "LSTMCell", "GRUCell", "RNN", "Convolution2DTranspose", "Deconvolution2D",
        "Deconvolution3D", "SeparableConvolution2D", "AtrousConv2D", "ActivityRegularization",
        "UnitNormalization", "Flatten", "InputLayer"})
MERGE_FUNCTIONS = kinds.MERGE_FUNCTIONS
# Layers cnnc cannot follow and why (besides kinds.KERAS_OTHER_LAYERS).
KERAS1_REMOVED = {
    "Merge": "Keras 1's Merge layer is gone: use Add(), Concatenate(), ... on a list of tensors",
    "AtrousConvolution2D": "Keras 1's AtrousConvolution2D is Conv2D(..., dilation_rate=...)",
    "AtrousConvolution1D": "Keras 1's AtrousConvolution1D is Conv1D(..., dilation_rate=...)",
    "AtrousConv2D": "Keras 1's AtrousConv2D is Conv2D(..., dilation_rate=...)",
    "Deconvolution2D": "Keras 1's Deconvolution2D is Conv2DTranspose",
    "Deconvolution3D": "Keras 1's Deconvolution3D is Conv3DTranspose",
    "MaxoutDense": "Keras 1's MaxoutDense was removed in Keras 2",
    "Highway": "Keras 1's Highway layer was removed in Keras 2",
}

OBJECT_MODULES = {"optimizers", "losses", "initializers", "regularizers", "activations",
                  "constraints", "metrics", "schedules"}


def canonical(path: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    """A Keras path in its Keras 3 form, and a note when it was a Keras 2 spelling.

    ('tensorflow', 'keras', 'layers') -> ('keras', 'layers'); ('keras', 'layers',
    'convolutional') -> ('keras', 'layers') with a note; other tensorflow paths stay."""
    p = tuple(path)
    if p and p[0] in ("tf_keras", "keras_core"):
        p = ("keras",) + p[1:]
    if "keras" in p:
        p = p[len(p) - 1 - p[::-1].index("keras"):]
    else:
        return p, None
    if len(p) > 1 and p[1] == "src":
        rest = [x for x in p[2:] if x[:1].isupper() or x in ("layers", "models", "optimizers",
                "losses", "datasets", "utils", "backend", "activations", "initializers",
                "regularizers", "applications", "callbacks", "ops")]
        return ("keras",) + tuple(dict.fromkeys(rest)), None
    note = None
    if len(p) >= 3 and p[:2] in KERAS2_MODULES and p[2] in KERAS2_MODULES[p[:2]]:
        old = ".".join(p[:3])
        note = f"'{old}' is a Keras 2 module path; Keras 3 has these names in '{'.'.join(p[:2])}'"
        p = p[:2] + p[3:]
    elif len(p) >= 2 and p[1] in ENGINE:
        note = f"'{'.'.join(p[:2])}' is a Keras 2 module path; Keras 3 has Model and Input in 'keras'"
        rest = tuple(x for x in p[2:] if x not in ENGINE)
        p = ("keras",) + rest
    return p, note


def exported(module: tuple[str, ...], name: str) -> bool:
    """Whether `from <module> import *` brings `name` (for names Keras defines)."""
    if module == ("keras", "layers"):
        return name in LAYER_NAMES or name in MERGE_FUNCTIONS or name == "Input"
    if module == ("keras", "models"):
        return name in ("Sequential", "Model", "load_model", "clone_model", "model_from_json")
    if module == ("keras",):
        return name in ("Sequential", "Model", "Input", "layers", "models", "optimizers",
                        "losses", "datasets", "utils", "backend", "callbacks", "regularizers",
                        "initializers", "activations", "applications", "ops", "metrics")
    if module in (("keras", "optimizers"), ("keras", "losses"), ("keras", "regularizers"),
                  ("keras", "initializers"), ("keras", "activations"), ("keras", "callbacks"),
                  ("keras", "utils"), ("keras", "datasets"), ("keras", "backend"),
                  ("keras", "metrics"), ("keras", "constraints")):
        return True
    return False


# Names a tutorial snippet uses without importing them (the article imported them in an
# earlier block): module aliases, and Keras's own names. name -> (path, the import line)
_ALIASES = {
    "keras": (("keras",), "import keras"),
    "tf": (("tensorflow",), "import tensorflow as tf"),
    "layers": (("keras", "layers"), "from keras import layers"),
    "models": (("keras", "models"), "from keras import models"),
    "optimizers": (("keras", "optimizers"), "from keras import optimizers"),
    "K": (("keras", "backend"), "from keras import backend as K"),
    "np": (("numpy",), "import numpy as np"),
}
_TOP_NAMES = {"Sequential": "models", "Model": "models", "Input": "layers", "load_model": "models"}
_FUNCTIONS = {"to_categorical": ("keras", "utils"), "image_dataset_from_directory": ("keras", "utils"),
              "plot_model": ("keras", "utils")}


def snippet_import(name: str) -> tuple[tuple[str, ...], str] | None:
    """What a name used without an import is in Keras, and the line that imports it."""
    if name in _ALIASES:
        return _ALIASES[name]
    if name in _TOP_NAMES:
        module = _TOP_NAMES[name]
        return ("keras", name), f"from keras.{module} import {name}"
    if name in _FUNCTIONS:
        return _FUNCTIONS[name] + (name,), f"from {'.'.join(_FUNCTIONS[name])} import {name}"
    if name in LAYER_NAMES and name[:1].isupper() and name not in ("Layer", "InputSpec"):
        return ("keras", "layers", name), f"from keras.layers import {name}"
    from cnnc.analysis.compile_spec import OPTIMIZERS
    if name in OPTIMIZERS:
        return ("keras", "optimizers", name), f"from keras.optimizers import {name}"
    return None


# keras.backend in Keras 3 (tf.keras.backend keeps Keras 2's functions); int_shape and
# image_dim_ordering are followed with a warning (tools/script_truth.py maps them too)
KERAS3_BACKEND = frozenset({
    "backend", "clear_session", "epsilon", "floatx", "get_uid", "image_data_format",
    "is_float_dtype", "is_int_dtype", "is_keras_tensor", "result_type", "set_epsilon",
    "set_floatx", "set_image_data_format", "standardize_dtype", "int_shape",
    "image_dim_ordering", "set_image_dim_ordering", "set_learning_phase", "learning_phase"})
