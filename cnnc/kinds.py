"""The layer kinds cnnc knows: Keras 3 class names, argument order, defaults.

One `LayerKind` per Keras class. Variants that differ only in spatial rank
(Conv1D/2D/3D, ...) share a *family*; every phase has one rule per family and
reads the rank from the kind. Signatures copy Keras 3's positional order and
defaults so that a `model.add(...)` line from a tutorial binds the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import activations
from . import syntax as S
from .arguments import (ArgError, Converter, Initializer, boolean, choice, fraction, initializer,
                        layer_name, must_be, number, optional, optional_int, positive_int,
                        regularizer, shape, snake_case, tuple_of, any_int, literal)
from .diagnostics import did_you_mean

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

    @property
    def all_params(self) -> tuple[Param, ...]:
        return self.params + (COMMON if self.takes_common else ())

    @property
    def default_name(self) -> str:
        return snake_case(self.name)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# --- converters specific to layers -------------------------------------------

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
                       v.span, f"quote it: {name}='{v.last}'" if isinstance(v, S.Name) else "")
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
    if not isinstance(x, tuple) or not x or not all(isinstance(i, int) and not isinstance(i, bool)
                                                   for i in x):
        raise ArgError(f"`{name}` must be a tuple of integers such as (7, 7, 64), got "
                       f"{S.describe(v)}", v.span)
    if any(i == 0 or i < -1 for i in x) or x.count(-1) > 1:
        raise ArgError(f"`{name}` sizes must be positive, with at most one -1, got "
                       f"{S.describe(v)}", v.span)
    return x


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
    head: list[Param] = [] if depthwise else [Param("filters", positive_int)]
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
                 Param("groups", must_be(1, why="grouped convolutions are not implemented yet"), 1)]
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
    Param("units", positive_int),
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
            Param("noise_shape", must_be(None, why="noise_shape is not implemented"), None),
            Param("seed", optional_int, None))),
        LayerKind("BatchNormalization", "batch_norm", None, _BN),
        LayerKind("Activation", "activation", None, (Param("activation", activation),)),
        LayerKind("Reshape", "reshape", None, (Param("target_shape", target_shape),)),
    ]
    return out


KINDS: dict[str, LayerKind] = {k.name: k for k in _kinds()}
ALIASES: dict[str, str] = {a: k.name for k in KINDS.values() for a in k.aliases}
FAMILIES: tuple[str, ...] = tuple(sorted({k.family for k in KINDS.values()}))

# Keras layers cnnc does not implement, for a precise message instead of "unknown".
KERAS_OTHER_LAYERS = frozenset("""
Conv1DTranspose Conv2DTranspose Conv3DTranspose UpSampling1D UpSampling2D UpSampling3D
Cropping1D Cropping2D Cropping3D LSTM GRU SimpleRNN Bidirectional Embedding Concatenate Add
Multiply Subtract Average Maximum Minimum Dot Permute RepeatVector LayerNormalization
GroupNormalization UnitNormalization GaussianNoise GaussianDropout AlphaDropout ActivityRegularization
ReLU LeakyReLU PReLU ELU Softmax Rescaling Normalization Resizing RandomFlip RandomRotation
RandomZoom RandomCrop RandomTranslation RandomContrast CenterCrop Lambda TimeDistributed
ConvLSTM1D ConvLSTM2D ConvLSTM3D MultiHeadAttention Attention AdditiveAttention
LocallyConnected1D LocallyConnected2D Masking Identity Wrapper EinsumDense Discretization
CategoryEncoding Hashing StringLookup IntegerLookup TextVectorization
""".split())


def lookup(name: str) -> LayerKind | None:
    canonical = ALIASES.get(name, name)
    return KINDS.get(canonical)


def all_layer_names() -> list[str]:
    return list(KINDS) + list(ALIASES)
