"""Keras 1 and 2 spellings that Keras 3 changed: each gets a diagnostic with the
Keras 3 fix. Where Keras 3 refuses the old spelling, it is an error, and cnnc reads
it as the old Keras meant so that the rest of the model is still checked; where
Keras 3 silently reads it differently (`Convolution2D(32, 3, 3)`), cnnc follows
Keras 3 and warns loudly."""

from __future__ import annotations

from cnnc.frontends.python.values import ArgVal, LayerVal
from cnnc.support.diagnostics import Reporter

# old keyword -> (Keras 3 keyword, how the value changes)
_RENAMED = {
    "border_mode": "padding",
    "subsample": "strides",
    "subsample_length": "strides",
    "init": "kernel_initializer",
    "W_regularizer": "kernel_regularizer",
    "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint",
    "b_constraint": "bias_constraint",
    "bias": "use_bias",
    "nb_filter": "filters",
    "filter_length": "kernel_size",
    "output_dim": "units",
    "pool_length": "pool_size",
    "stride": "strides",
    "dim_ordering": "data_format",
    "atrous_rate": "dilation_rate",
    "p": "rate",
    "depth_multiplier": "depth_multiplier",
}
_DIM_ORDERING = {"tf": "channels_last", "th": "channels_first", "default": "channels_last"}
_CONV2D = ("Convolution2D", "Conv2D", "SeparableConv2D", "SeparableConvolution2D",
           "Conv2DTranspose", "Convolution2DTranspose")


def translate_layer(layer: LayerVal, rep: Reporter) -> None:
    cls = layer.cls
    positional = [a for a in layer.args if a.keyword is None]
    ints = [a.value for a in positional[:3]]
    if (cls in _CONV2D and len(positional) >= 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in ints)
            and not any(a.keyword in ("kernel_size", "strides") for a in layer.args)):
        f, k1, k2 = ints
        rep.warning(f"{cls}({f}, {k1}, {k2}, ...) is Keras 1's spelling of a {k1}x{k2} kernel, "
                    f"but Keras 3 reads it as kernel_size={k1}, strides={k2}",
                    positional[1].span.to(positional[2].span),
                    f"cnnc follows Keras 3 (strides={k2}), which changes every shape after it",
                    f"use Conv2D({f}, ({k1}, {k2})) for the Keras 1 meaning")
    new_args = []
    for a in layer.args:
        k = a.keyword
        if k in _RENAMED and k != "depth_multiplier":
            new = _RENAMED[k]
            if k == "p" and cls not in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"):
                new_args.append(a)
                continue
            value = a.value
            fix = f"write {new}="
            if k == "dim_ordering":
                value = _DIM_ORDERING.get(value, value)
                fix = f"remove it (Keras 3 uses data_format, default '{value}')"
            if k == "bias" and not isinstance(value, bool):
                new_args.append(a)
                continue
            rep.error(f"`{k}=` is Keras 1's spelling, which Keras 3 refuses", a.keyword_span or a.span,
                      f"Keras 3 calls it `{new}`: {fix}; cnnc reads it as {new} to check the rest")
            new_args.append(ArgVal(new, value, a.span, a.keyword_span))
        elif k == "batch_input_shape":
            v = a.value
            rep.warning("`batch_input_shape=` on a layer is Keras 2's spelling", a.keyword_span or a.span,
                        "Keras 3 ignores it on layers other than InputLayer; write input_shape= "
                        "without the batch size, or start with keras.Input(batch_shape=...)")
            if isinstance(v, (tuple, list)) and len(v) >= 2:
                new_args.append(ArgVal("input_shape", tuple(v[1:]), a.span, a.keyword_span))
        else:
            new_args.append(a)
    layer.args = new_args


def translate_input(cls: str, args: list[ArgVal], rep: Reporter) -> list[ArgVal]:
    out = []
    for a in args:
        if a.keyword == "input_shape" and cls == "InputLayer":
            rep.warning("InputLayer(input_shape=...) is Keras 2's spelling", a.keyword_span or a.span,
                        "Keras 3 still reads it, with a deprecation warning; write shape=")
            out.append(ArgVal("shape", a.value, a.span, a.keyword_span))
        elif a.keyword == "batch_input_shape" and cls == "InputLayer":
            out.append(ArgVal("batch_shape", a.value, a.span, a.keyword_span))
        else:
            out.append(a)
    return out


def path_fix(path: tuple[str, ...]) -> tuple[str, ...]:
    if "np_utils" in path:
        return ("write `from keras.utils import to_categorical` (np_utils is gone in Keras 3)",)
    if len(path) >= 3 and path[1] == "layers":
        return ("write `from keras.layers import ...` (Keras 3 refuses the old module path)",)
    return ("Keras 3 refuses the old module path; import from the top-level Keras module",)


FIT_RENAMED = {"nb_epoch": "epochs", "nb_val_samples": None, "samples_per_epoch": None}


def translate_optimizer(cls: str, args: list[ArgVal], rep: Reporter) -> None:
    """`Adam(lr=0.001)`: Keras 3 refuses `lr` ("Argument(s) not recognized"); an error
    with the fix, read as learning_rate so that the rest is checked."""
    for i, a in enumerate(args):
        if a.keyword == "lr":
            rep.error(f"{cls}(lr=...) is Keras 2's spelling, which Keras 3 refuses",
                      a.keyword_span or a.span, "write learning_rate=")
            args[i] = ArgVal("learning_rate", a.value, a.span, a.keyword_span)


# TensorFlow's initializer functions -> Keras's initializer classes (the same draws)
TF_INITIALIZERS = {
    "random_normal_initializer": "RandomNormal", "truncated_normal_initializer": "TruncatedNormal",
    "glorot_uniform_initializer": "GlorotUniform", "glorot_normal_initializer": "GlorotNormal",
    "random_uniform_initializer": "RandomUniform", "zeros_initializer": "Zeros",
    "ones_initializer": "Ones", "constant_initializer": "Constant",
    "variance_scaling_initializer": "VarianceScaling", "he_normal": "HeNormal",
    "orthogonal_initializer": "Orthogonal"}
# their positional parameters, in TensorFlow's order
_TF_INIT_PARAMS = {
    "random_normal_initializer": ("mean", "stddev", "seed"),
    "truncated_normal_initializer": ("mean", "stddev", "seed"),
    "random_uniform_initializer": ("minval", "maxval", "seed"),
    "constant_initializer": ("value",), "glorot_uniform_initializer": ("seed",),
    "glorot_normal_initializer": ("seed",), "he_normal": ("seed",)}


def tf_initializer_args(fn: str, args: list[ArgVal]) -> list[ArgVal]:
    """`tf.random_normal_initializer(0., 0.02)` -> RandomNormal(mean=0., stddev=0.02)."""
    names = _TF_INIT_PARAMS.get(fn, ())
    out, i = [], 0
    for a in args:
        if a.keyword is None and i < len(names):
            out.append(ArgVal(names[i], a.value, a.span, a.span))
            i += 1
        elif a.keyword is not None and a.keyword != "dtype":
            out.append(a)
    return out


_OBTAIN_PARAMS = ("input_shape", "default_size", "min_size", "data_format", "require_flatten", "weights")


def obtain_input_shape(args: list[ArgVal], span, rep: Reporter):
    """Keras's obtain_input_shape (Keras 2's `_obtain_input_shape`, kept by Keras 3 in
    keras.src.applications.imagenet_utils) for channels_last: the input shape an
    applications-style builder uses. Where Keras raises, the script stops (_Raise)."""
    from cnnc.frontends.python.limits import _Raise
    from cnnc.frontends.python.values import ObjectVal, Unknown
    given = {p: None for p in _OBTAIN_PARAMS}
    positional = [a for a in args if a.keyword is None]
    for p, a in zip(_OBTAIN_PARAMS, positional):
        given[p] = a.value
    for a in args:
        if a.keyword is not None:
            given["require_flatten" if a.keyword == "include_top" else a.keyword] = a.value
    for key in ("input_shape", "default_size", "min_size", "require_flatten", "weights"):
        if isinstance(given.get(key), Unknown):
            return given[key]
    shape, size, min_size = given["input_shape"], given["default_size"], given["min_size"]
    flatten, weights = given["require_flatten"], given["weights"]
    if given["data_format"] == "channels_first":
        return Unknown("obtain_input_shape for channels_first, which cnnc does not compute", span)
    if not isinstance(size, int) or not isinstance(min_size, int):
        return Unknown("obtain_input_shape's sizes are not known", span)
    if shape is not None and not isinstance(shape, (tuple, list)):
        return Unknown("obtain_input_shape's input_shape is not a shape", span)

    def fail(message: str):
        raise _Raise(ObjectVal("exception", {"type": "ValueError", "args": (message,)}), span=span)

    if weights != "imagenet" and shape and len(shape) == 3:
        default = (size, size, shape[-1])
    else:
        default = (size, size, 3)
    if weights == "imagenet" and flatten:
        if shape is not None and tuple(shape) != default:
            fail(f"When setting `include_top=True` and loading `imagenet` weights, `input_shape` "
                 f"should be {default}.  Received: input_shape={tuple(shape)}")
        return default
    if shape:
        if len(shape) != 3:
            fail("`input_shape` must be a tuple of three integers.")
        if shape[-1] != 3 and weights == "imagenet":
            fail(f"The input must have 3 channels; Received `input_shape={tuple(shape)}`")
        if any(d is not None and isinstance(d, int) and d < min_size for d in shape[:2]):
            fail(f"Input size must be at least {min_size}x{min_size}; Received: "
                 f"input_shape={tuple(shape)}")
    else:
        shape = default if flatten else (None, None, 3)
    if flatten and None in tuple(shape):
        fail(f"If `include_top` is True, you should specify a static `input_shape`. "
             f"Received: input_shape={tuple(shape)}")
    return shape


# Keras 2 helpers that Keras 3 no longer has where scripts import them: the fix
DROPPED_HELPERS = {
    "int_shape": "in Keras 3 write `x.shape` (or keras.ops.shape(x))",
    "image_dim_ordering": "in Keras 3 write keras.backend.image_data_format() ('channels_last')",
    "_obtain_input_shape": "Keras 3 keeps it as keras.src.applications.imagenet_utils.obtain_input_shape",
    "obtain_input_shape": "Keras 3 keeps it in keras.src.applications.imagenet_utils, outside its API",
    "correct_pad": "Keras 3 keeps it in keras.src.applications.imagenet_utils, outside its API",
    "get_submodules_from_kwargs": "it belongs to the keras_applications package of Keras 2",
}
