"""The layer kinds cnnc knows: Keras 3 class names, argument order, defaults.

One `LayerKind` per Keras class. Variants that differ only in spatial rank
(Conv1D/2D/3D, ...) share a *family*; every phase has one rule per family and
reads the rank from the kind. Signatures copy Keras 3's positional order and
defaults so that a `model.add(...)` line from a tutorial binds the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnc.analysis import activations
from cnnc.analysis.arguments import (
    ArgError,
    Converter,
    Initializer,
    any_int,
    boolean,
    choice,
    count,
    expect_int,
    fraction,
    initializer,
    layer_name,
    literal,
    must_be,
    number,
    optional,
    optional_int,
    positive_everywhere,
    positive_int,
    regularizer,
    shape,
    snake_case,
    tuple_of,
)
from cnnc.analysis.symbolic import Expr
from cnnc.language import syntax as S
from cnnc.support.diagnostics import did_you_mean

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    convert: Converter
    default: Any = REQUIRED
    keyword_only: bool = False


@dataclass(frozen=True)
class LayerKind:
    name: str                      # Keras class name, e.g. "Conv2D"
    family: str                    # rule key shared by the rank variants
    rank: int | None               # spatial rank for 1D/2D/3D variants
    params: tuple[Param, ...]
    aliases: tuple[str, ...] = ()
    takes_common: bool = True      # False where Keras's __init__ has no **kwargs
    multi_input: bool = False      # called on a list of tensors (Add, Concatenate, ...)

    @property
    def all_params(self) -> tuple[Param, ...]:
        return self.params + (COMMON if self.takes_common else ())

    @property
    def default_name(self) -> str:
        return snake_case(self.name)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# --- converters specific to layers -------------------------------------------

def _quote_hint(v: S.Value, name: str) -> str:
    """`activation=relu`: quote it, with the name that works (`Relu` -> 'relu')."""
    if not isinstance(v, S.Name):
        return ""
    found = activations.canonical(v.last)
    if found is None:
        hint = did_you_mean(v.last, activations.all_names())
        found = hint.split("'")[1] if hint else None
    if found is None:
        return "quote an activation's name; supported: " + ", ".join(activations.all_names())
    return f"quote it: {name}='{found}'"


def activation(v: S.Value, name: str) -> str:
    """'relu', None, keras.activations.relu, tf.nn.relu -> canonical name."""
    if isinstance(v, S.Name) and v.dotted == "None":
        return "linear"
    if isinstance(v, S.String):
        key, span = v.value, v.span
    elif isinstance(v, S.Name) and len(v.parts) > 1:
        key, span = v.last, v.span
    else:
        raise ArgError(f"`{name}` must be an activation name such as 'relu', got {S.describe(v)}",
                       v.span, _quote_hint(v, name))
    found = activations.canonical(key)
    if found is not None:
        return found
    if key in activations.KERAS_ONLY:
        raise ArgError(f"cnnc does not support the activation {key!r} yet", span,
                       "supported: " + ", ".join(activations.all_names()))
    raise ArgError(f"unknown activation {key!r}", span,
                   did_you_mean(key, activations.all_names()) or
                   "supported: " + ", ".join(activations.all_names()))


def padding_mode(causal: bool) -> Converter:
    options = ("valid", "same", "causal") if causal else ("valid", "same")
    base = choice(options)

    def convert(v: S.Value, name: str) -> str:
        if isinstance(v, S.String) and v.value.lower() == "causal" and not causal:
            raise ArgError("padding='causal' is only for Conv1D", v.span,
                           "Keras allows it on Conv1D only; use 'same' or 'valid'")
        return base(v, name)
    return convert


def conv_groups(v: S.Value, name: str) -> int:
    """Conv's `groups`: a positive int (Keras's BaseConv check); that it divides
    `filters` and the input channels is checked with the shapes (infer.windows.conv)."""
    x = expect_int(v, name)
    if x <= 0:
        raise ArgError(f"`{name}` must be a positive integer, got {x}", v.span,
                       f"Keras: The number of groups must be a positive integer. Received: "
                       f"groups={x}.")
    return x


def zero_padding(rank: int) -> Converter:
    """ZeroPadding: int, a tuple per axis, or (before, after) pairs per axis."""
    def convert(v: S.Value, name: str) -> tuple[tuple[int, int], ...]:
        x = literal(v, name)
        if isinstance(x, list):
            x = tuple(x)
        if rank == 1:
            pair = tuple_of(2, allow_zero=True)(v, name)
            return (pair,)
        if isinstance(x, int) and not isinstance(x, bool):
            if x < 0:
                raise ArgError(f"`{name}` must be >= 0, got {x}", v.span)
            return ((x, x),) * rank
        if not isinstance(x, tuple) or len(x) != rank:
            raise ArgError(f"`{name}` must be an int, a tuple of {rank} ints, or {rank} "
                           f"(before, after) pairs, got {S.describe(v)}", v.span)
        items = v.items if isinstance(v, (S.Tuple, S.List)) else ()
        out = []
        for item in items:
            out.append(tuple_of(2, allow_zero=True)(item, f"{name} entry"))
        return tuple(out)
    return convert


def target_shape(v: S.Value, name: str) -> tuple[int, ...]:
    x = literal(v, name)
    if isinstance(x, int) and not isinstance(x, bool):
        x = (x,)
    if isinstance(x, list):
        x = tuple(x)
    if not isinstance(x, tuple) or not x or not all(
            (isinstance(i, int) and not isinstance(i, bool)) or isinstance(i, Expr) for i in x):
        raise ArgError(f"`{name}` must be a tuple of integers such as (7, 7, 64), got "
                       f"{S.describe(v)}", v.span)
    if any(isinstance(i, Expr) and not positive_everywhere(i) for i in x):
        raise ArgError(f"`{name}` sizes must be positive for every value of their open sizes, "
                       f"got {S.describe(v)}", v.span)
    fixed = [i for i in x if isinstance(i, int)]
    if any(i == 0 or i < -1 for i in fixed) or fixed.count(-1) > 1:
        raise ArgError(f"`{name}` sizes must be positive, with at most one -1, got "
                       f"{S.describe(v)}", v.span)
    return x


# --- elementwise, normalisation and scaling layers (see docs/LANGUAGE.md) -----------

def _ints(v: S.Value, name: str, what: str) -> tuple[int, ...]:
    x = literal(v, name)
    if isinstance(x, list):
        x = tuple(x)
    if not isinstance(x, tuple) or not all(isinstance(i, int) and not isinstance(i, bool) for i in x):
        raise ArgError(f"`{name}` must be {what}, got {S.describe(v)}", v.span)
    return x


def axes(allow_none: bool, allow_empty: bool) -> Converter:
    """An axis (batch axis 0 included, negative counts from the end) or a tuple/list
    of them, as a tuple; None where Keras allows it (kept as None)."""
    what = "an integer or a tuple of integers" + (" or None" if allow_none else "")

    def convert(v: S.Value, name: str) -> tuple[int, ...] | None:
        x = literal(v, name)
        if x is None and allow_none:
            return None
        if isinstance(x, int) and not isinstance(x, bool):
            return (x,)
        out = _ints(v, name, what)
        if not out and not allow_empty:
            raise ArgError(f"`{name}` must name at least one axis, got {S.describe(v)}", v.span)
        return out
    return convert


def shared_axes(v: S.Value, name: str) -> tuple[int, ...] | None:
    """PReLU's shared_axes: None, an int, or a list/tuple of ints (Keras keeps a list)."""
    x = literal(v, name)
    if x is None:
        return None
    if isinstance(x, int) and not isinstance(x, bool):
        return (x,)
    return _ints(v, name, "an integer, a list of integers or None")


def noise_shape(v: S.Value, name: str) -> tuple[int | None, ...] | None:
    """Dropout's noise_shape: None, or a tuple/list of positive ints and None (Keras's
    _validate_noise_shape); a None entry takes the input's size on that axis."""
    x = literal(v, name)
    if x is None:
        return None
    if isinstance(x, list):
        x = tuple(x)
    if not isinstance(x, tuple):
        raise ArgError(f"`{name}` must be a tuple or list of integers and None, got "
                       f"{S.describe(v)}", v.span, "e.g. noise_shape=(None, 1, 1, None)")
    for i, d in enumerate(x):
        if d is None:
            continue
        if not isinstance(d, int) or isinstance(d, bool):
            raise ArgError(f"`{name}` entries must be integers or None, got {d!r} at index {i}",
                           v.span)
        if d <= 0:
            raise ArgError(f"`{name}` entries must be positive or None, got {d} at index {i}",
                           v.span)
    return x


def array_shape(x: Any) -> tuple[int, ...]:
    """The shape of a number (()) or of a rectangular nested tuple of numbers."""
    if not isinstance(x, tuple):
        return ()
    inner = {array_shape(i) for i in x}
    return (len(x), *(inner.pop() if inner else ()))


def number_array(v: S.Value, name: str) -> float | tuple:
    """A number or a (nested) tuple/list of numbers of rectangular shape, as floats in
    nested tuples: Rescaling's scale/offset, Normalization's mean/variance."""
    def walk(x: Any) -> float | tuple:
        if isinstance(x, (list, tuple)):
            items = tuple(walk(i) for i in x)
            if len({array_shape(i) for i in items}) > 1:
                raise ArgError(f"`{name}` must be a rectangular array of numbers (every row "
                               f"the same length), got {S.describe(v)}", v.span)
            return items
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ArgError(f"`{name}` must be a number or a list of numbers, got "
                           f"{S.describe(v)}", v.span)
        return float(x)
    return walk(literal(v, name))


# --- parameter groups ----------------------------------------------------------

_CHANNELS_LAST = "cnnc computes channels_last (NHWC), Keras's default"
_NO_CONSTRAINT = "cnnc does not implement constraints or activity regularizers yet; remove it"


def _extra_arg(name: str) -> Param:
    """Weight regularizers (L1/L2, used in training); constraints and activity
    regularizers, which cnnc accepts only as None."""
    if name.endswith("_regularizer") and name != "activity_regularizer":
        return Param(name, regularizer, None)
    return Param(name, must_be(None, why=_NO_CONSTRAINT), None)


def _init(name: str, default: str) -> Param:
    return Param(name, initializer, Initializer(default))


def _activation_param() -> Param:
    return Param("activation", activation, "linear")


DATA_FORMAT = Param("data_format", must_be(None, "channels_last", why=_CHANNELS_LAST), None)

# Keyword arguments every Keras layer takes (keras.layers.Layer.__init__).
COMMON = (
    Param("name", optional(layer_name), None, keyword_only=True),
    Param("trainable", boolean, True, keyword_only=True),
    Param("dtype", must_be(None, "float32", why="cnnc computes in float32"), None, keyword_only=True),
    Param("autocast", boolean, True, keyword_only=True),
    Param("input_shape", shape, None, keyword_only=True),
    Param("input_dim", positive_int, None, keyword_only=True),
    Param("batch_size", optional(positive_int), None, keyword_only=True),
)


def _conv_params(rank: int, separable: bool = False, depthwise: bool = False) -> tuple[Param, ...]:
    t = tuple_of(rank)
    ones = (1,) * rank
    head: list[Param] = [] if depthwise else [Param("filters", count)]
    head += [Param("kernel_size", t), Param("strides", t, ones),
             Param("padding", padding_mode(rank == 1 and not separable and not depthwise), "valid")]
    if depthwise:
        head += [Param("depth_multiplier", positive_int, 1), DATA_FORMAT,
                 Param("dilation_rate", t, ones)]
    elif separable:
        head += [DATA_FORMAT, Param("dilation_rate", t, ones),
                 Param("depth_multiplier", positive_int, 1)]
    else:
        head += [DATA_FORMAT, Param("dilation_rate", t, ones),
                 Param("groups", conv_groups, 1)]
    head += [_activation_param(), Param("use_bias", boolean, True)]
    if separable:
        inits = [_init("depthwise_initializer", "GlorotUniform"),
                 _init("pointwise_initializer", "GlorotUniform"), _init("bias_initializer", "Zeros")]
        extras = ["depthwise_regularizer", "pointwise_regularizer", "bias_regularizer",
                  "activity_regularizer", "depthwise_constraint", "pointwise_constraint",
                  "bias_constraint"]
    elif depthwise:
        inits = [_init("depthwise_initializer", "GlorotUniform"), _init("bias_initializer", "Zeros")]
        extras = ["depthwise_regularizer", "bias_regularizer", "activity_regularizer",
                  "depthwise_constraint", "bias_constraint"]
    else:
        inits = [_init("kernel_initializer", "GlorotUniform"), _init("bias_initializer", "Zeros")]
        extras = ["kernel_regularizer", "bias_regularizer", "activity_regularizer",
                  "kernel_constraint", "bias_constraint"]
    tail = [_extra_arg(e) for e in extras]
    if not separable and not depthwise:
        tail += [Param("lora_rank", must_be(None, why="LoRA is not implemented"), None, True),
                 Param("lora_alpha", must_be(None, why="LoRA is not implemented"), None, True)]
    return tuple(head + inits + tail)


def _pool_params(rank: int, default_pool: tuple[int, ...] | object) -> tuple[Param, ...]:
    t = tuple_of(rank)
    return (Param("pool_size", t, default_pool), Param("strides", optional(t), None),
            Param("padding", padding_mode(False), "valid"), DATA_FORMAT,
            Param("name", optional(layer_name), None))


def _global_pool_params() -> tuple[Param, ...]:
    return (DATA_FORMAT, Param("keepdims", boolean, False))


def _spatial_dropout_params(rank: int) -> tuple[Param, ...]:
    rate = Param("rate", fraction(0.0, 1.0))
    seed = Param("seed", optional_int, None)
    name = Param("name", optional(layer_name), None)
    dtype = Param("dtype", must_be(None, "float32", why="cnnc computes in float32"), None)
    return (rate, seed, name, dtype) if rank == 1 else (rate, DATA_FORMAT, seed, name, dtype)


def _zero_padding_default(rank: int) -> tuple[tuple[int, int], ...]:
    return ((1, 1),) * rank


_BN = (
    Param("axis", any_int, -1),
    Param("momentum", number(), 0.99),
    Param("epsilon", number(0.0, strict=True), 1e-3),
    Param("center", boolean, True),
    Param("scale", boolean, True),
    _init("beta_initializer", "Zeros"),
    _init("gamma_initializer", "Ones"),
    _init("moving_mean_initializer", "Zeros"),
    _init("moving_variance_initializer", "Ones"),
    _extra_arg("beta_regularizer"), _extra_arg("gamma_regularizer"),
    _extra_arg("beta_constraint"), _extra_arg("gamma_constraint"),
    Param("renorm", must_be(False, why="batch renormalization is not implemented"), False),
    Param("renorm_clipping", must_be(None, why="batch renormalization is not implemented"), None),
    Param("renorm_momentum", number(), 0.99),
    Param("synchronized", boolean, False),
)

_DENSE = (
    Param("units", count),
    _activation_param(),
    Param("use_bias", boolean, True),
    _init("kernel_initializer", "GlorotUniform"),
    _init("bias_initializer", "Zeros"),
    _extra_arg("kernel_regularizer"), _extra_arg("bias_regularizer"), _extra_arg("activity_regularizer"),
    _extra_arg("kernel_constraint"), _extra_arg("bias_constraint"),
    Param("lora_rank", must_be(None, why="LoRA is not implemented"), None),
    Param("lora_alpha", must_be(None, why="LoRA is not implemented"), None),
    Param("quantization_config", must_be(None, why="quantization is not implemented"), None),
)


_RELU = (
    Param("max_value", optional(number(0.0)), None),
    Param("negative_slope", number(0.0), 0.0),
    Param("threshold", number(0.0), 0.0),
)

_LEAKY_RELU = (
    Param("negative_slope", number(0.0), 0.3),
    # Keras 3 still accepts the Keras 2 spelling (with a deprecation warning); it wins.
    Param("alpha", number(0.0), None, keyword_only=True),
)

_PRELU = (
    _init("alpha_initializer", "Zeros"),
    _extra_arg("alpha_regularizer"),
    _extra_arg("alpha_constraint"),
    Param("shared_axes", shared_axes, None),
)

_LAYER_NORM = (
    Param("axis", axes(allow_none=False, allow_empty=False), (-1,)),
    Param("epsilon", number(), 1e-3),
    Param("center", boolean, True),
    Param("scale", boolean, True),
    _init("beta_initializer", "Zeros"),
    _init("gamma_initializer", "Ones"),
    _extra_arg("beta_regularizer"), _extra_arg("gamma_regularizer"),
    _extra_arg("beta_constraint"), _extra_arg("gamma_constraint"),
    # popped from **kwargs by Keras (deprecated there, but still honoured)
    Param("rms_scaling", boolean, False, keyword_only=True),
)

_NORMALIZATION = (
    Param("axis", axes(allow_none=True, allow_empty=True), (-1,)),
    Param("mean", optional(number_array), None),
    Param("variance", optional(number_array), None),
    Param("invert", boolean, False),
)


def _elementwise_kinds() -> list[LayerKind]:
    return [
        LayerKind("ReLU", "relu", None, _RELU),
        LayerKind("LeakyReLU", "leaky_relu", None, _LEAKY_RELU),
        LayerKind("PReLU", "prelu", None, _PRELU),
        LayerKind("ELU", "elu", None, (Param("alpha", number(), 1.0),)),
        LayerKind("Softmax", "softmax", None,
                  (Param("axis", axes(allow_none=True, allow_empty=False), (-1,)),)),
        LayerKind("Identity", "identity", None, ()),
        LayerKind("Rescaling", "rescaling", None,
                  (Param("scale", number_array), Param("offset", number_array, 0.0))),
        LayerKind("Normalization", "normalization", None, _NORMALIZATION),
        LayerKind("LayerNormalization", "layer_norm", None, _LAYER_NORM),
        # keras.src.applications.convnext.LayerScale (ConvNeXt's; not in keras.layers)
        LayerKind("LayerScale", "layer_scale", None,
                  (Param("init_values", number()), Param("projection_dim", positive_int))),
    ]


def _kinds() -> list[LayerKind]:
    out: list[LayerKind] = []
    for r in (1, 2, 3):
        d = f"{r}D"
        out.append(LayerKind(f"Conv{d}", "conv", r, _conv_params(r), (f"Convolution{d}",)))
        out.append(LayerKind(f"MaxPooling{d}", "max_pool", r, _pool_params(r, (2,) * r),
                             (f"MaxPool{d}",)))
        # Keras 3 gives AveragePooling no default pool_size (MaxPooling has one).
        out.append(LayerKind(f"AveragePooling{d}", "avg_pool", r, _pool_params(r, REQUIRED),
                             (f"AvgPool{d}",)))
        out.append(LayerKind(f"GlobalMaxPooling{d}", "global_max_pool", r, _global_pool_params(),
                             (f"GlobalMaxPool{d}",)))
        out.append(LayerKind(f"GlobalAveragePooling{d}", "global_avg_pool", r,
                             _global_pool_params(), (f"GlobalAvgPool{d}",)))
        # Keras's SpatialDropout takes no **kwargs: no trainable=, no input_shape=.
        out.append(LayerKind(f"SpatialDropout{d}", "spatial_dropout", r, _spatial_dropout_params(r),
                             takes_common=False))
        out.append(LayerKind(f"ZeroPadding{d}", "zero_padding", r,
                             (Param("padding", zero_padding(r), _zero_padding_default(r)), DATA_FORMAT)))
    for r in (1, 2):
        d = f"{r}D"
        out.append(LayerKind(f"SeparableConv{d}", "separable_conv", r,
                             _conv_params(r, separable=True), (f"SeparableConvolution{d}",)))
        out.append(LayerKind(f"DepthwiseConv{d}", "depthwise_conv", r,
                             _conv_params(r, depthwise=True)))
    out += [
        LayerKind("Dense", "dense", None, _DENSE),
        LayerKind("Flatten", "flatten", None, (DATA_FORMAT,)),
        LayerKind("Dropout", "dropout", None, (
            Param("rate", fraction(0.0, 1.0)),
            Param("noise_shape", noise_shape, None),
            Param("seed", optional_int, None))),
        LayerKind("BatchNormalization", "batch_norm", None, _BN),
        LayerKind("Activation", "activation", None, (Param("activation", activation),)),
        LayerKind("Reshape", "reshape", None, (Param("target_shape", target_shape),)),
    ]
    out += _merge_kinds()
    out += _resample_kinds()
    out += _elementwise_kinds()
    out += _augment_kinds()
    return out


# Keras's merge layers and the functions that build them (`add([a, b])`, ...).
MERGE_FUNCTIONS = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply",
                   "average": "Average", "maximum": "Maximum", "minimum": "Minimum",
                   "concatenate": "Concatenate"}


def _merge_kinds() -> list[LayerKind]:
    elementwise = [LayerKind(cls, "merge", None, (), multi_input=True)
                   for cls in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")]
    concat = LayerKind("Concatenate", "concatenate", None, (Param("axis", any_int, -1),),
                       multi_input=True)
    # InceptionResNetV2's scaled residual (keras.applications.inception_resnet_v2):
    # CustomScaleLayer(scale)([x, up]) = x + up * scale
    scaled = LayerKind("CustomScaleLayer", "custom_scale", None, (Param("scale", number()),),
                       multi_input=True)
    return elementwise + [concat, scaled]


# --- transposed convolutions, resampling, cropping (Keras 3) ----------------------

_RESAMPLE_INTERPOLATIONS = ("nearest", "bilinear")
# what Keras's TensorFlow backend also accepts (ops.image.resize), cnnc does not compute
_KERAS_ONLY_INTERPOLATIONS = ("bicubic", "area", "lanczos3", "lanczos5")


def strict_positive_int(v: S.Value, name: str) -> int:
    """An int > 0 and nothing else: Keras refuses 2.0 here (UpSampling1D's size,
    Resizing's height and width)."""
    x = literal(v, name)
    if not isinstance(x, int) or isinstance(x, bool):
        raise ArgError(f"`{name}` must be an integer, got {S.describe(v)}", v.span,
                       "Keras refuses a float here too")
    if x <= 0:
        raise ArgError(f"`{name}` must be a positive integer, got {x}", v.span)
    return x


def interpolation(lower: bool) -> Converter:
    """'nearest' or 'bilinear'; Keras's other methods refused by name. UpSampling2D
    lower-cases the value, Resizing does not (Keras)."""
    def convert(v: S.Value, name: str) -> str:
        x = literal(v, name)
        if not isinstance(x, str):
            raise ArgError(f"`{name}` must be a string such as 'bilinear', got {S.describe(v)}",
                           v.span)
        key = x.lower() if lower else x
        if key in _RESAMPLE_INTERPOLATIONS:
            return key
        if key in _KERAS_ONLY_INTERPOLATIONS:
            raise ArgError(f"cnnc does not support {name}={x!r} yet", v.span,
                           "supported: 'nearest', 'bilinear'")
        known = _RESAMPLE_INTERPOLATIONS + _KERAS_ONLY_INTERPOLATIONS
        raise ArgError(f"`{name}` must be one of " + ", ".join(repr(k) for k in known) +
                       f"; got {x!r}", v.span, did_you_mean(key, known) or
                       ("Resizing's interpolation is case-sensitive in Keras" if x.lower() in known
                        else ""))
    return convert


def _conv_transpose_params(rank: int) -> tuple[Param, ...]:
    """Keras 3's ConvNDTranspose signatures; Conv3DTranspose puts data_format before
    output_padding, the 1-D and 2-D ones after it."""
    t = tuple_of(rank)
    ones = (1,) * rank
    out_pad = Param("output_padding", optional(tuple_of(rank, allow_zero=True)), None)
    head = [Param("filters", count), Param("kernel_size", t), Param("strides", t, ones),
            Param("padding", choice(("valid", "same")), "valid")]
    head += [DATA_FORMAT, out_pad] if rank == 3 else [out_pad, DATA_FORMAT]
    head += [Param("dilation_rate", t, ones), _activation_param(), Param("use_bias", boolean, True),
             _init("kernel_initializer", "GlorotUniform"), _init("bias_initializer", "Zeros")]
    extras = ["kernel_regularizer", "bias_regularizer", "activity_regularizer",
              "kernel_constraint", "bias_constraint"]
    return tuple(head + [_extra_arg(e) for e in extras])


def _up_sampling_params(rank: int) -> tuple[Param, ...]:
    if rank == 1:
        return (Param("size", strict_positive_int, 2),)
    size = Param("size", tuple_of(rank), (2,) * rank)
    if rank == 2:
        return (size, DATA_FORMAT, Param("interpolation", interpolation(lower=True), "nearest"))
    return (size, DATA_FORMAT)


_CROPPING_DEFAULT = {1: ((1, 1),), 2: ((0, 0), (0, 0)), 3: ((1, 1),) * 3}
_NO_ASPECT = "cnnc resizes without keeping the aspect ratio (the default); remove it"

_RESIZING = (
    Param("height", strict_positive_int),
    Param("width", strict_positive_int),
    Param("interpolation", interpolation(lower=False), "bilinear"),
    Param("crop_to_aspect_ratio", must_be(False, why=_NO_ASPECT), False),
    Param("pad_to_aspect_ratio", must_be(False, why=_NO_ASPECT), False),
    Param("fill_mode", choice(("constant",), lower=False), "constant"),
    Param("fill_value", number(), 0.0),
    Param("antialias", must_be(False, why="antialiased resizing is not implemented"), False),
    DATA_FORMAT,
    Param("factor", must_be(None, why="Keras's Resizing takes no factor either"), None,
          keyword_only=True),
    Param("bounding_box_format", must_be(None, why="cnnc's Resizing transforms images only"),
          None, keyword_only=True),
)


def _resample_kinds() -> list[LayerKind]:
    out: list[LayerKind] = []
    for r in (1, 2, 3):
        d = f"{r}D"
        out.append(LayerKind(f"Conv{d}Transpose", "conv_transpose", r, _conv_transpose_params(r),
                             (f"Convolution{d}Transpose",)))
        out.append(LayerKind(f"UpSampling{d}", "up_sampling", r, _up_sampling_params(r)))
        crop = (Param("cropping", zero_padding(r), _CROPPING_DEFAULT[r]),)
        out.append(LayerKind(f"Cropping{d}", "cropping", r, crop + ((DATA_FORMAT,) if r > 1 else ())))
    out.append(LayerKind("Resizing", "resizing", 2, _RESIZING))
    return out


# --- data augmentation and noise: the identity at inference ----------------------------
# Keras transforms (or perturbs) only when training; cnnc's NumPy trainer does neither,
# so these are the identity everywhere in cnnc (see docs/LANGUAGE.md).

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_AUGMENT_INTERPOLATIONS = ("nearest", "bilinear")
_FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def _real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def augment_factor(lo: float, hi: float, lo_open: bool = False, base: bool = False) -> Converter:
    """A number or a pair (lower, upper) of numbers, as Keras checks it. `base`: the
    check of BaseImagePreprocessingLayer._set_factor (RandomRotation, RandomContrast,
    RandomBrightness): a number in [lo, hi], a pair whose lower <= hi and upper >= lo,
    None as 0. Otherwise RandomZoom's / RandomTranslation's: every number in the range
    ((lo, hi] with `lo_open`)."""
    rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"

    def convert(v: S.Value, name: str) -> float | tuple[float, float]:
        x = literal(v, name)
        if x is None and base:
            return 0.0                      # Keras: `factor or 0.0`
        if isinstance(x, list):
            x = tuple(x)
        pair = isinstance(x, tuple) and len(x) == 2 and all(_real(i) for i in x)
        message = (f"`{name}` must be a number or a pair (lower, upper) of numbers in {rng}, "
                   f"got {S.describe(v)}")
        if not (_real(x) or pair):
            raise ArgError(message, v.span)
        if base and pair:
            ok = x[0] <= hi and x[1] >= lo
        else:
            ok = all((lo < i if lo_open else lo <= i) and i <= hi for i in (x if pair else (x,)))
        if not ok:
            raise ArgError(message, v.span, "Keras refuses it too")
        return (float(x[0]), float(x[1])) if pair else float(x)
    return convert


def number_pair(v: S.Value, name: str) -> tuple[float, float]:
    """value_range: two numbers (the range of the images' values)."""
    x = literal(v, name)
    if isinstance(x, list):
        x = tuple(x)
    if not (isinstance(x, tuple) and len(x) == 2 and all(_real(i) for i in x)):
        raise ArgError(f"`{name}` must be a pair of numbers such as (0, 255), got "
                       f"{S.describe(v)}", v.span)
    return (float(x[0]), float(x[1]))


_SEED = Param("seed", optional_int, None)
_FILL = (Param("fill_mode", choice(_FILL_MODES, lower=False), "reflect"),
         Param("interpolation", choice(_AUGMENT_INTERPOLATIONS, lower=False), "bilinear"),
         _SEED, Param("fill_value", number(), 0.0), DATA_FORMAT)
_ZOOM = augment_factor(-1.0, 1.0, lo_open=True)
_SHIFT = augment_factor(-1.0, 1.0)
_VALUE_RANGE = Param("value_range", number_pair, (0.0, 255.0))
# RandomContrast and RandomBrightness take data_format through **kwargs
_DATA_FORMAT_KW = Param(DATA_FORMAT.name, DATA_FORMAT.convert, None, keyword_only=True)


def _augment_kinds() -> list[LayerKind]:
    """Keras 3.15's signatures (keras/src/layers/preprocessing/image_preprocessing/,
    keras/src/layers/regularization/)."""
    image = [
        ("RandomFlip", (Param("mode", choice(_FLIP_MODES, lower=False), "horizontal_and_vertical"),
                        _SEED, DATA_FORMAT)),
        ("RandomRotation", (Param("factor", augment_factor(-1.0, 1.0, base=True)), *_FILL)),
        ("RandomZoom", (Param("height_factor", _ZOOM), Param("width_factor", optional(_ZOOM), None),
                        *_FILL)),
        ("RandomTranslation", (Param("height_factor", _SHIFT), Param("width_factor", _SHIFT),
                               *_FILL)),
        ("RandomContrast", (Param("factor", augment_factor(0.0, 1.0, base=True)), _VALUE_RANGE,
                            _SEED, _DATA_FORMAT_KW)),
        ("RandomBrightness", (Param("factor", augment_factor(-1.0, 1.0, base=True)), _VALUE_RANGE,
                              _SEED, _DATA_FORMAT_KW)),
    ]
    noise = [
        ("GaussianNoise", (Param("stddev", fraction(0.0, 1.0)), _SEED)),
        ("GaussianDropout", (Param("rate", fraction(0.0, 1.0)), _SEED)),
        ("AlphaDropout", (Param("rate", fraction(0.0, 1.0)), Param("noise_shape", noise_shape, None),
                          _SEED)),
    ]
    return ([LayerKind(n, "augment", None, p) for n, p in image] +
            [LayerKind(n, "noise", None, p) for n, p in noise])


KINDS: dict[str, LayerKind] = {k.name: k for k in _kinds()}
ALIASES: dict[str, str] = {a: k.name for k in KINDS.values() for a in k.aliases}

# Arithmetic on tensors (`x + 3.0`, `x * y`, `-x`): in Keras 3 these are operations
# (keras.src.ops.numpy.Add, ...) in the graph, not layers; their names share the
# numbering of the layers of the same snake_case name (`add`, `add_1`, ...).
OP_CLASSES = {"add": "Add", "sub": "Subtract", "mul": "Multiply", "div": "TrueDivide",
              "neg": "Negative"}
OP_KINDS: dict[str, LayerKind] = {
    cls: LayerKind(cls, "tensor_op", None, (), takes_common=False, multi_input=True)
    for cls in OP_CLASSES.values()}
FAMILIES: tuple[str, ...] = tuple(sorted({k.family for k in (*KINDS.values(), *OP_KINDS.values())}))

# Keras layers cnnc does not implement, for a precise message instead of "unknown".
KERAS_OTHER_LAYERS = frozenset("""
LSTM GRU SimpleRNN Bidirectional Embedding Dot Permute RepeatVector GroupNormalization
UnitNormalization ActivityRegularization RandomCrop CenterCrop Lambda
TimeDistributed ConvLSTM1D ConvLSTM2D ConvLSTM3D MultiHeadAttention Attention AdditiveAttention
LocallyConnected1D LocallyConnected2D Masking Wrapper EinsumDense Discretization
CategoryEncoding Hashing StringLookup IntegerLookup TextVectorization
""".split())


# Layers Keras defines inside its applications rather than in keras.layers, and how to
# write them in .cnn instead.
APPLICATION_LAYERS: dict[str, str] = {}


def lookup(name: str) -> LayerKind | None:
    canonical = ALIASES.get(name, name)
    return KINDS.get(canonical)


def all_layer_names() -> list[str]:
    return list(KINDS) + list(ALIASES)
