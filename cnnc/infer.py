"""Shape inference: output shapes, weights, parameter counts, MACs, receptive fields.

One rule per layer family in `RULES`. A rule gets the layer and what flows
into it (`Flow`) and returns the layer's `LayerInfo`, or raises `ShapeError`
with the arithmetic that failed. After an error the shapes downstream are
unknown and no further shape error is reported for them (they would only
repeat the first), but every layer's own arguments were already checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Sequence

from . import shapes as sh
from .arguments import Initializer, Regularizer
from .diagnostics import Reporter, Span
from .ir import Layer, ModelIR
from .kinds import array_shape

BYTES_PER_VALUE = 4  # float32


class ShapeError(Exception):
    def __init__(self, message: str, span: Span | None = None, *notes: str):
        super().__init__(message)
        self.message = message
        self.span = span
        self.notes = [n for n in notes if n]


@dataclass(frozen=True)
class Weight:
    name: str                    # Keras weight name: kernel, bias, gamma, ...
    shape: tuple[int, ...]
    trainable: bool
    initializer: Initializer
    regularizer: Regularizer | None = None   # its L1/L2 penalty in training

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Flow:
    """What a layer receives: the sample shape and, while the tensor is still
    an image, the receptive field and jump of each spatial axis."""

    shape: tuple[int | None, ...]
    rf: tuple[int, ...] | None = None
    jump: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LayerInfo:
    layer: Layer
    input: Flow
    output: Flow
    weights: tuple[Weight, ...] = ()
    macs: int | None = 0
    warnings: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), compare=False)
    inputs: tuple[Flow, ...] = ()       # every input of a merge; () means (input,)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def input_flows(self) -> tuple[Flow, ...]:
        return self.inputs or (self.input,)

    @property
    def input_shapes(self) -> tuple[tuple[int | None, ...], ...]:
        return tuple(f.shape for f in self.input_flows)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return self.input.shape

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        return self.output.shape

    @property
    def params(self) -> int:
        return sum(w.size for w in self.weights)

    @property
    def trainable_params(self) -> int:
        return sum(w.size for w in self.weights if w.trainable)

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    @property
    def activation_bytes(self) -> int | None:
        n = sh.numel(self.output.shape)
        return None if n is None else n * BYTES_PER_VALUE


@dataclass(frozen=True)
class Analysis:
    model: ModelIR
    infos: tuple[LayerInfo, ...]      # the model's layers, in model order
    complete: bool          # False when some layer's shape could not be inferred

    @cached_property
    def _by_name(self) -> dict[str, LayerInfo]:
        return {i.name: i for i in self.infos}

    def info(self, name: str) -> LayerInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(name) from None

    def shape_of(self, tensor: str) -> tuple[int | None, ...] | None:
        """The sample shape of a node's tensor (an input or a layer), None if unknown."""
        node = self.model.input_node(tensor)
        if node is not None:
            return node.shape
        info = self._by_name.get(tensor)
        return info.output_shape if info is not None else None

    @property
    def output_shapes(self) -> tuple[tuple[int | None, ...] | None, ...]:
        return tuple(self.shape_of(o) for o in self.model.outputs)

    @property
    def total_params(self) -> int:
        return sum(i.params for i in self.infos)

    @property
    def trainable_params(self) -> int:
        return sum(i.trainable_params for i in self.infos)

    @property
    def non_trainable_params(self) -> int:
        return sum(i.non_trainable_params for i in self.infos)

    @property
    def total_macs(self) -> int | None:
        macs = [i.macs for i in self.infos]
        return None if any(m is None for m in macs) else sum(macs)

    @property
    def output_shape(self) -> tuple[int | None, ...] | None:
        """The (first) output's sample shape."""
        if self.model.outputs:
            return self.shape_of(self.model.outputs[0])
        return self.infos[-1].output_shape if self.infos else self.model.input_shape


Rule = Callable[[Layer, Flow], LayerInfo]


# --- helpers -------------------------------------------------------------------

_AXES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_LAYOUT = {1: "(batch, steps, channels)", 2: "(batch, height, width, channels)",
           3: "(batch, depth, height, width, channels)"}


def _need_rank(layer: Layer, x: Flow, rank: int) -> None:
    """Keras's InputSpec(ndim=rank+2): the sample must be (*spatial, channels)."""
    if len(x.shape) != rank + 1:
        got = sh.fmt_shape(x.shape)
        hint = _rank_hint(x, rank)
        raise ShapeError(f"{layer.kind} expects a {rank + 2}-D input {_LAYOUT[rank]}, "
                         f"got {len(x.shape) + 1}-D {got}", layer.span, hint)


def _rank_hint(x: Flow, rank: int) -> str:
    n = sh.numel(x.shape)
    if len(x.shape) < rank + 1 and n is not None:
        guess = _guess_reshape(n, rank)
        if guess:
            return f"add a Reshape before it, e.g. Reshape({guess})"
        return (f"add a Reshape to {rank} spatial axes and channels before it (the sizes must "
                f"multiply to {n}), or remove the Flatten/Dense that made it {len(x.shape) + 1}-D")
    if len(x.shape) > rank + 1:
        return f"use the {len(x.shape) - 1}D variant of this layer, or Flatten/Reshape first"
    return ""


def _guess_reshape(n: int, rank: int) -> str:
    if rank == 1:
        return f"({n}, 1)"
    side = int(round(n ** (1 / rank)))
    if side ** rank == n:
        return "(" + ", ".join([str(side)] * rank) + ", 1)"
    return ""


def _channels(layer: Layer, x: Flow) -> int:
    c = x.shape[-1]
    if c is None:
        raise ShapeError(f"{layer.kind} needs the channel dimension to be known, got None",
                         layer.span, "Keras refuses an undefined channel axis too")
    return c


def _spatial_out(layer: Layer, x: Flow, k: Sequence[int], s: Sequence[int], d: Sequence[int],
                 padding: str, pooling: bool) -> tuple[int | None, ...]:
    spatial = x.shape[:-1]
    out = tuple(sh.pool_output_length(n, kk, ss, padding) if pooling
                else sh.conv_output_length(n, kk, ss, dd, padding)
                for n, kk, ss, dd in zip(spatial, k, s, d))
    bad = [i for i, o in enumerate(out) if o is not None and o <= 0]
    if bad:
        raise _too_small(layer, spatial, k, s, d, out, bad, pooling)
    return out


def _too_small(layer: Layer, spatial, k, s, d, out, bad, pooling: bool) -> ShapeError:
    rank = len(spatial)
    need = tuple(sh.effective_kernel(kk, dd) for kk, dd in zip(k, d))
    what = "pool_size" if pooling else "kernel_size"
    size = layer.args[what]
    dilated = any(dd > 1 for dd in d)
    i = bad[0]
    axis = _AXES[rank][i]
    if pooling or d[i] == 1:
        formula = f"floor(({spatial[i]} - {k[i]}) / {s[i]}) + 1 = {out[i]}"
    else:
        formula = f"floor(({spatial[i]} - {d[i]}*({k[i]}-1) - 1) / {s[i]}) + 1 = {out[i]}"
    kernel_desc = f"{what}={sh.fmt_size(size)}" + (f" with dilation_rate={sh.fmt_size(d)}" if dilated else "")
    msg = (f"{layer.kind} {kernel_desc} does not fit its input: needs at least "
           f"{sh.fmt_size(need)}, got {sh.fmt_size(spatial)}")
    return ShapeError(msg, layer.span_of(what),
                      f"with padding='valid' the output {axis} is {formula}, which must be at least 1",
                      "use padding='same', a smaller " + what + ", or fewer pooling layers before it")


def _rf(x: Flow, k, s, d) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    if x.rf is None or x.jump is None or len(x.rf) != len(k):
        return None, None
    pairs = [sh.receptive_field(r, j, kk, ss, dd) for r, j, kk, ss, dd in zip(x.rf, x.jump, k, s, d)]
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


def _weight(layer: Layer, name: str, shape: tuple[int, ...], init_arg: str,
            trainable: bool = True) -> Weight:
    # Keras pairs each weight's initializer with its regularizer by name:
    # kernel_initializer / kernel_regularizer, gamma_initializer / gamma_regularizer, ...
    reg = layer.args.get(init_arg.replace("_initializer", "_regularizer"))
    return Weight(name, shape, trainable and layer.trainable, layer.args[init_arg], reg)


def _macs(out_spatial: Sequence[int | None], per_position: int) -> int | None:
    n = sh.numel(out_spatial)
    return None if n is None else n * per_position


# --- rules -----------------------------------------------------------------------

def _window(layer: Layer, x: Flow):
    """What every convolution shares: input channels, kernel, output positions,
    receptive field and jump."""
    _need_rank(layer, x, layer.rank)
    c = _channels(layer, x)
    k, s, d = layer["kernel_size"], layer["strides"], layer["dilation_rate"]
    out = _spatial_out(layer, x, k, s, d, layer["padding"], pooling=False)
    rf, jump = _rf(x, k, s, d)
    return c, k, out, rf, jump


def conv(layer: Layer, x: Flow) -> LayerInfo:
    c, k, out, rf, jump = _window(layer, x)
    f = layer["filters"]
    weights = [_weight(layer, "kernel", (*k, c, f), "kernel_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (f,), "bias_initializer"))
    return LayerInfo(layer, x, Flow((*out, f), rf, jump), tuple(weights),
                     _macs(out, math.prod(k) * c * f))


def depthwise_conv(layer: Layer, x: Flow) -> LayerInfo:
    c, k, out, rf, jump = _window(layer, x)
    m = layer["depth_multiplier"]
    weights = [_weight(layer, "kernel", (*k, c, m), "depthwise_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (c * m,), "bias_initializer"))
    return LayerInfo(layer, x, Flow((*out, c * m), rf, jump), tuple(weights),
                     _macs(out, math.prod(k) * c * m))


def separable_conv(layer: Layer, x: Flow) -> LayerInfo:
    c, k, out, rf, jump = _window(layer, x)
    m, f = layer["depth_multiplier"], layer["filters"]
    weights = [_weight(layer, "depthwise_kernel", (*k, c, m), "depthwise_initializer"),
               _weight(layer, "pointwise_kernel", (*(1,) * layer.rank, c * m, f),
                       "pointwise_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (f,), "bias_initializer"))
    return LayerInfo(layer, x, Flow((*out, f), rf, jump), tuple(weights),
                     _macs(out, math.prod(k) * c * m + c * m * f))


def _pool(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    p = layer["pool_size"]
    s = layer["strides"] or p
    ones = (1,) * r
    out = _spatial_out(layer, x, p, s, ones, layer["padding"], pooling=True)
    rf, jump = _rf(x, p, s, ones)
    return LayerInfo(layer, x, Flow((*out, x.shape[-1]), rf, jump), (), 0)


max_pool = _pool
avg_pool = _pool


def _global_pool(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    c = x.shape[-1]
    out = (*(1,) * r, c) if layer["keepdims"] else (c,)
    rf = None
    if x.rf is not None and x.jump is not None and all(n is not None for n in x.shape[:-1]):
        rf = tuple(rr + (n - 1) * j for rr, j, n in zip(x.rf, x.jump, x.shape[:-1]))
    return LayerInfo(layer, x, Flow(out, rf, None), (), 0)


global_max_pool = _global_pool
global_avg_pool = _global_pool


def flatten(layer: Layer, x: Flow) -> LayerInfo:
    n = sh.numel(x.shape)
    return LayerInfo(layer, x, Flow((n,)), (), 0)


def dense(layer: Layer, x: Flow) -> LayerInfo:
    n_in = x.shape[-1]
    if n_in is None:
        raise ShapeError("Dense needs the last dimension of its input to be known, got None",
                         layer.span, "put a Flatten() or a global pooling layer before it")
    units = layer["units"]
    weights = [_weight(layer, "kernel", (n_in, units), "kernel_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (units,), "bias_initializer"))
    warnings = ()
    if len(x.shape) > 1:
        warnings = ((f"Dense on a {len(x.shape) + 1}-D input {sh.fmt_shape(x.shape)} acts on the "
                     f"last axis only", ("add Flatten() before it if you meant to use every value",
                                         "Keras does the same; this is legal")),)
    return LayerInfo(layer, x, Flow((*x.shape[:-1], units)), tuple(weights),
                     _macs(x.shape[:-1], n_in * units), warnings)


def _identity(layer: Layer, x: Flow) -> LayerInfo:
    return LayerInfo(layer, x, x, (), 0)


activation = _identity


def spatial_dropout(layer: Layer, x: Flow) -> LayerInfo:
    _need_rank(layer, x, layer.rank)
    return LayerInfo(layer, x, x, (), 0)


def _feature_axis(layer: Layer, shape: tuple, what: str, hint: str = "") -> int:
    """The layer's `axis` argument as a positive axis of the batched tensor; not the batch."""
    full_rank = len(shape) + 1
    axis = layer["axis"]
    if not -full_rank <= axis < full_rank:
        raise ShapeError(f"{layer.kind} axis={axis} is out of range for a {full_rank}-D input "
                         f"{sh.fmt_shape(shape)}", layer.span_of("axis"))
    if axis % full_rank == 0:
        raise ShapeError(f"{layer.kind} cannot {what} the batch axis (axis={axis})",
                         layer.span_of("axis"), hint)
    return axis % full_rank


def batch_norm(layer: Layer, x: Flow) -> LayerInfo:
    axis = _feature_axis(layer, x.shape, "normalise over")
    c = x.shape[axis - 1]
    if c is None:
        raise ShapeError(f"BatchNormalization needs axis {axis} to have a known size, got None",
                         layer.span_of("axis"))
    weights = []
    if layer["scale"]:
        weights.append(_weight(layer, "gamma", (c,), "gamma_initializer"))
    if layer["center"]:
        weights.append(_weight(layer, "beta", (c,), "beta_initializer"))
    weights.append(_weight(layer, "moving_mean", (c,), "moving_mean_initializer", trainable=False))
    weights.append(_weight(layer, "moving_variance", (c,), "moving_variance_initializer",
                           trainable=False))
    return LayerInfo(layer, x, x, tuple(weights), sh.numel(x.shape))


def zero_padding(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    pads = layer["padding"]
    out = tuple(None if n is None else n + a + b for n, (a, b) in zip(x.shape[:-1], pads))
    return LayerInfo(layer, x, Flow((*out, x.shape[-1]), x.rf, x.jump), (), 0)


def reshape(layer: Layer, x: Flow) -> LayerInfo:
    target = layer["target_shape"]
    n = sh.numel(x.shape)
    if n is None:
        out = tuple(None if t == -1 else t for t in target)
        return LayerInfo(layer, x, Flow(out), (), 0)
    known = math.prod(t for t in target if t != -1)
    if -1 in target:
        if n % known:
            raise ShapeError(f"Reshape cannot fit {n} values into {target}: {n} is not a multiple "
                             f"of {known}", layer.span_of("target_shape"))
        out = tuple(n // known if t == -1 else t for t in target)
    else:
        if known != n:
            raise ShapeError(f"Reshape cannot fit {n} values {sh.fmt_shape(x.shape)} into "
                             f"{target} ({known} values)", layer.span_of("target_shape"),
                             "the total size must stay the same")
        out = tuple(target)
    return LayerInfo(layer, x, Flow(out), (), 0)


# --- transposed convolutions, resampling, cropping ----------------------------------

def _per_axis(value, rank: int) -> tuple:
    return (value,) * rank if isinstance(value, int) else tuple(value)


def conv_transpose(layer: Layer, x: Flow) -> LayerInfo:
    """Conv1D/2D/3DTranspose: Keras's kernel is (*kernel_size, filters, in_channels)."""
    r = layer.rank
    _need_rank(layer, x, r)
    c = _channels(layer, x)
    k, s, d = layer["kernel_size"], layer["strides"], layer["dilation_rate"]
    op, padding, f = layer["output_padding"], layer["padding"], layer["filters"]
    ops = op or (None,) * r
    # checks on two arguments at once, as Keras's constructor makes them
    if op is not None and any(o >= ss for o, ss in zip(op, s)):
        raise ShapeError(f"{layer.kind} output_padding={op} must be smaller than strides={s} "
                         "on every axis", layer.span_of("output_padding"),
                         "Keras refuses it too", "use output_padding=None for Keras's default length")
    if max(s) > 1 and max(d) > 1:
        raise ShapeError("strides > 1 cannot be combined with dilation_rate > 1",
                         layer.span_of("dilation_rate"),
                         f"got strides={s} and dilation_rate={d}; Keras refuses this combination too",
                         "use strides=1, or dilation_rate=1")
    if padding == "same" and op is not None:
        bad = [i for i, (kk, dd, o) in enumerate(zip(k, d, op))
               if sh.effective_kernel(kk, dd) % 2 == 0 and o == 0]
        if bad:
            i = bad[0]
            kk = sh.effective_kernel(k[i], d[i])
            raise ShapeError(f"{layer.kind} with padding='same', output_padding=0 and an even kernel "
                             f"extent {kk} on the {_AXES[r][i]} axis has no valid output length",
                             layer.span_of("output_padding"),
                             f"the output would be (n-1)*{s[i]} + {kk}%2 + 0 long, one stride too "
                             f"short for the n inputs; Keras (TensorFlow) fails when it runs",
                             "use output_padding=None, output_padding >= 1 (below strides), or an "
                             "odd kernel_size")
    out = tuple(sh.deconv_output_length(n, kk, ss, dd, padding, o)
                for n, kk, ss, dd, o in zip(x.shape[:-1], k, s, d, ops))
    weights = [_weight(layer, "kernel", (*k, f, c), "kernel_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (f,), "bias_initializer"))
    return LayerInfo(layer, x, Flow((*out, f)), tuple(weights),
                     _macs(x.shape[:-1], math.prod(k) * c * f))


def up_sampling(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    size = _per_axis(layer["size"], r)
    out = tuple(None if n is None else n * f for n, f in zip(x.shape[:-1], size))
    return LayerInfo(layer, x, Flow((*out, x.shape[-1])), (), 0)


def cropping(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    crop = layer["cropping"]
    out = tuple(None if n is None else n - a - b for n, (a, b) in zip(x.shape[:-1], crop))
    bad = [i for i, o in enumerate(out) if o is not None and o <= 0]
    if bad:
        i = bad[0]
        (a, b), n = crop[i], x.shape[i]
        raise ShapeError(f"{layer.kind} cropping={crop if r > 1 else crop[0]} leaves nothing of "
                         f"the {_AXES[r][i]} axis: {n} - {a} - {b} = {out[i]}",
                         layer.span_of("cropping"),
                         f"the cropping of each axis must be smaller than its size "
                         f"{sh.fmt_size(x.shape[:-1])}; Keras refuses it too")
    return LayerInfo(layer, x, Flow((*out, x.shape[-1]), x.rf, x.jump), (), 0)


def resizing(layer: Layer, x: Flow) -> LayerInfo:
    """Keras's Resizing on a batch of images (batch, height, width, channels)."""
    _need_rank(layer, x, 2)
    return LayerInfo(layer, x, Flow((layer["height"], layer["width"], x.shape[-1])), (), 0)


# --- elementwise, normalisation and scaling layers -------------------------------------
# Keras counts axes with the batch as axis 0; these rules do too ("full" shapes).

def _full(x: Flow) -> tuple[int | None, ...]:
    return (None, *x.shape)


def _fmt_axes(axes) -> str:
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def _positive_axes(layer: Layer, arg: str, axes: Sequence[int], x: Flow) -> tuple[int, ...]:
    """Keras axes (batch = 0, negative from the end) as positive axes; refuses an axis
    outside [-ndim, ndim) or one named twice."""
    full = _full(x)
    n = len(full)
    bad = [a for a in axes if not -n <= a < n]
    if bad:
        raise ShapeError(f"{layer.kind} {arg}={_fmt_axes(axes)}: axis {bad[0]} is out of range for a "
                         f"{n}-D input {sh.fmt_shape(x.shape)}", layer.span_of(arg),
                         f"axes count the batch as 0: valid axes are {-n} to {n - 1}")
    out = tuple(a % n for a in axes)
    if len(set(out)) < len(out):
        raise ShapeError(f"{layer.kind} {arg}={_fmt_axes(axes)} names the same axis twice for a "
                         f"{n}-D input {sh.fmt_shape(x.shape)}", layer.span_of(arg),
                         "Keras fails on repeated axes too")
    return out


def _mixing(x: Flow, axes: Sequence[int]) -> Flow:
    """The output flow of a layer whose outputs each read every position of `axes`
    (positive, batch = 0): those spatial axes' receptive field becomes the whole axis."""
    if x.rf is None or x.jump is None:
        return x
    rf = list(x.rf)
    for a in axes:
        i = a - 1
        if 0 <= i < len(rf):
            n = x.shape[i]
            if n is None:
                return Flow(x.shape)
            rf[i] = rf[i] + (n - 1) * x.jump[i]
    return Flow(x.shape, tuple(rf), x.jump)


def _fits_broadcast(layer: Layer, arg: str, shape: tuple[int, ...], x: Flow) -> None:
    """An array argument must broadcast to the input (batch first) without changing its
    shape: Keras reports the input's shape but would compute a bigger one, or fail."""
    full = _full(x)
    if len(shape) > len(full):
        raise ShapeError(f"{layer.kind} {arg} has shape {shape}, more axes than its "
                         f"{len(full)}-D input {sh.fmt_shape(x.shape)}", layer.span_of(arg))
    for j, d in enumerate(shape):
        axis = len(full) - len(shape) + j
        target = full[axis]
        if d == 1 or d == target:
            continue
        what = "the batch axis" if axis == 0 else f"axis {axis} (size {'unknown' if target is None else target})"
        raise ShapeError(f"{layer.kind} {arg} of shape {shape} does not broadcast to its input "
                         f"{sh.fmt_shape(x.shape)}: its size {d} meets {what}", layer.span_of(arg),
                         "arrays align with the input from the right (NumPy broadcasting); each "
                         "size must be 1 or the input's")


def elementwise(layer: Layer, x: Flow) -> LayerInfo:
    """ReLU, LeakyReLU, ELU, Identity: the shape, receptive field and jump pass through."""
    warnings = ()
    if layer.kind == "LeakyReLU" and layer.args.get("alpha") is not None:
        warnings = (("LeakyReLU `alpha` is deprecated in Keras 3 (it still wins over "
                     "`negative_slope`)", ("write negative_slope= instead",)),)
    return LayerInfo(layer, x, x, (), 0, warnings)


def prelu_alpha_shape(layer: Layer, x: Flow) -> tuple[int | None, ...]:
    """alpha's shape as Keras's PReLU.build makes it: the sample shape with entry
    `axis - 1` set to 1 for each shared axis (Python indexing, so 0 and negative
    axes wrap around as they do in Keras)."""
    shape = list(x.shape)
    for a in layer["shared_axes"] or ():
        if not -len(shape) <= a - 1 < len(shape):
            raise ShapeError(f"PReLU shared_axes={list(layer['shared_axes'])}: axis {a} is out of "
                             f"range for a {len(shape) + 1}-D input {sh.fmt_shape(x.shape)}",
                             layer.span_of("shared_axes"),
                             f"axes count the batch as 0: share axes 1 to {len(shape)}")
        shape[a - 1] = 1
    return tuple(shape)


def prelu(layer: Layer, x: Flow) -> LayerInfo:
    shape = prelu_alpha_shape(layer, x)
    unknown = [i + 1 for i, n in enumerate(shape) if n is None]
    if unknown:
        raise ShapeError(f"PReLU needs a known size on every axis it does not share; axis "
                         f"{unknown[0]} of {sh.fmt_shape(x.shape)} is None", layer.span,
                         f"share it, e.g. shared_axes={unknown}", "Keras refuses this too")
    warnings = ()
    odd = [a for a in layer["shared_axes"] or () if a <= 0]
    if odd:
        warnings = ((f"PReLU shared_axes entry {odd[0]} does not name a sample axis: as in Keras "
                     f"it sets alpha's entry {odd[0] - 1} to 1, i.e. shares axis "
                     f"{(odd[0] - 1) % len(shape) + 1}",
                     ("axes count the batch as 0; sample axes are 1 to "
                      f"{len(shape)}",)),)
    weights = (_weight(layer, "alpha", shape, "alpha_initializer"),)
    return LayerInfo(layer, x, x, weights, sh.numel(x.shape), warnings)


def softmax_axes(layer: Layer, x: Flow) -> tuple[int, ...]:
    """Positive axes (batch = 0) Softmax normalises over; axis=None is every axis,
    the batch included (Keras flattens the whole tensor)."""
    axes = layer["axis"]
    if axes is None:
        return tuple(range(len(x.shape) + 1))
    return tuple(sorted(_positive_axes(layer, "axis", axes, x)))


def softmax(layer: Layer, x: Flow) -> LayerInfo:
    axes = softmax_axes(layer, x)
    warnings = ()
    if 0 in axes:
        warnings = (("Softmax over the batch axis mixes the samples of a batch: each output "
                     "depends on the batch size and on the other samples",
                     ("Keras does the same; axes count the batch as 0",)),)
    return LayerInfo(layer, x, _mixing(x, axes), (), 0, warnings)


def rescaling(layer: Layer, x: Flow) -> LayerInfo:
    for arg in ("scale", "offset"):
        _fits_broadcast(layer, arg, array_shape(layer[arg]), x)
    return LayerInfo(layer, x, x, (), sh.numel(x.shape))


@dataclass(frozen=True)
class NormalizationShapes:
    keep: tuple[int, ...]              # kept axes, positive, sorted (batch = 0)
    stats: tuple[int, ...]             # the mean/variance weights' shape
    broadcast: tuple[int, ...]         # full rank: kept sizes, 1 elsewhere
    constant: tuple[int, ...] | None   # mean/variance given: the shape they are reshaped to


def normalization_shapes(layer: Layer, x: Flow) -> NormalizationShapes:
    """Keras's Normalization.build: which axes keep their own statistics and how
    the statistics broadcast; refuses what build refuses."""
    full = _full(x)
    keep = tuple(sorted(_positive_axes(layer, "axis", layer["axis"] or (), x)))
    for a in keep:
        if full[a] is None:
            what = "the batch axis" if a == 0 else f"axis {a}"
            raise ShapeError(f"Normalization keeps separate statistics per index of {what}, "
                             f"whose size is unknown in {sh.fmt_shape(x.shape)}",
                             layer.span_of("axis"), "Keras refuses this too")
    broadcast = tuple(full[a] if a in keep else 1 for a in range(len(full)))
    stats = tuple(full[a] for a in keep)
    mean, var = layer["mean"], layer["variance"]
    if (mean is None) != (var is None):
        given = "mean" if mean is not None else "variance"
        raise ShapeError("Normalization needs `mean` and `variance` together", layer.span_of(given),
                         "give both, or neither (then they are non-trainable weights, "
                         "loaded or adapted)")
    if mean is None:
        return NormalizationShapes(keep, stats, broadcast, None)
    ms, vs = array_shape(mean), array_shape(var)
    if ms != vs:
        raise ShapeError(f"Normalization `mean` and `variance` must have the same shape, got {ms} and {vs}",
                         layer.span_of("variance"), "Keras requires the same shape")
    if len(ms) > len(keep):
        raise ShapeError(f"Normalization `mean` has rank {len(ms)}, more than the {len(keep)} "
                         f"kept axis(es) axis={layer['axis']}", layer.span_of("mean"))
    expanded = [1] * len(full)
    for i in range(1, len(ms) + 1):
        expanded[keep[-i]] = ms[-i]
    for a, (e, b) in enumerate(zip(expanded, broadcast)):
        if e not in (1, b):
            raise ShapeError(f"Normalization `mean`/`variance` of shape {ms} do not broadcast to "
                             f"the kept axes {keep} of {sh.fmt_shape(x.shape)}: size {e} meets "
                             f"axis {a} of size {b}", layer.span_of("mean"),
                             "they align with the kept axes from the right; each size must be "
                             "1 or the axis's")
    return NormalizationShapes(keep, stats, broadcast, tuple(expanded))


def normalization(layer: Layer, x: Flow) -> LayerInfo:
    shapes = normalization_shapes(layer, x)
    weights = ()
    if shapes.constant is None:
        weights = (Weight("mean", shapes.stats, False, Initializer("Zeros")),
                   Weight("variance", shapes.stats, False, Initializer("Ones")),
                   # Keras's int64 sample count, kept for compatibility; unused by call()
                   Weight("count", (), False, Initializer("Zeros")))
    return LayerInfo(layer, x, x, weights, sh.numel(x.shape))


def layer_norm_axes(layer: Layer, x: Flow) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(axes as Keras sorts them -- the raw values, so [1, -1] becomes [-1, 1] and
    gamma's shape follows that order --, the same axes positive)."""
    raw = tuple(sorted(layer["axis"]))
    pos = _positive_axes(layer, "axis", raw, x)
    full = _full(x)
    for a in pos:
        if a == 0 or full[a] is None:
            what = "the batch axis" if a == 0 else f"axis {a}"
            raise ShapeError(f"LayerNormalization's gamma/beta need a known size on every "
                             f"normalised axis; {what} of {sh.fmt_shape(x.shape)} is unknown",
                             layer.span_of("axis"), "Keras refuses this too")
    return raw, pos


def layer_norm(layer: Layer, x: Flow) -> LayerInfo:
    raw, pos = layer_norm_axes(layer, x)
    shape = tuple(_full(x)[a] for a in pos)
    rms = layer["rms_scaling"]
    weights = []
    if layer["scale"] or rms:
        weights.append(_weight(layer, "gamma", shape, "gamma_initializer"))
    if layer["center"] and not rms:
        weights.append(_weight(layer, "beta", shape, "beta_initializer"))
    warnings: tuple = ()
    if rms:
        warnings += (("LayerNormalization rms_scaling=True is deprecated in Keras 3: it divides by "
                      "the standard deviation, not the root mean square",
                      ("cnnc computes it as Keras does",)),)
    if list(pos) != sorted(pos):          # e.g. [1, -1] sorts to [-1, 1]
        warnings += ((f"LayerNormalization axis={list(layer['axis'])} mixes negative and positive "
                     f"axes: Keras sorts them as written, so gamma/beta have shape {shape} and are "
                     f"reshaped (not transposed) onto the input", ("cnnc does the same; write "
                                                                    "the axes all positive",)),)
    return LayerInfo(layer, x, _mixing(x, pos), tuple(weights), sh.numel(x.shape), warnings)


def layer_scale(layer: Layer, x: Flow) -> LayerInfo:
    """ConvNeXt's LayerScale: x * gamma, gamma of shape (projection_dim,) on the last axis."""
    p, c = layer["projection_dim"], x.shape[-1]
    if c == p or p == 1:
        out = x
    elif c == 1:
        out = Flow((*x.shape[:-1], p), x.rf, x.jump)
    else:
        raise ShapeError(f"LayerScale projection_dim={p} does not match the last axis of its input "
                         f"{sh.fmt_shape(x.shape)}", layer.span_of("projection_dim"),
                         f"use projection_dim={c}" if c is not None else
                         "the last axis must have a known size")
    gamma = Weight("variable", (p,), layer.trainable,
                   Initializer("Constant", (("value", layer["init_values"]),)))
    return LayerInfo(layer, x, out, (gamma,), sh.numel(out.shape))


def dropout_noise_shape(noise: Sequence[int | None], full: Sequence[int | None]) -> tuple[int | None, ...]:
    """Keras's concrete noise shape: a None entry takes the size of the input's axis
    at the same index counted from the left; the result then broadcasts against the
    input from the right."""
    return tuple(full[i] if d is None else d for i, d in enumerate(noise))


def dropout(layer: Layer, x: Flow) -> LayerInfo:
    noise = layer["noise_shape"]
    if noise is not None:
        full = _full(x)
        span = layer.span_of("noise_shape")
        if len(noise) > len(full):
            raise ShapeError(f"Dropout noise_shape {noise} has {len(noise)} entries, more than the "
                             f"{len(full)} axes of its input {sh.fmt_shape(x.shape)}", span,
                             "Keras would broadcast the output to a bigger shape when training; "
                             "give one entry per axis, batch first")
        concrete = dropout_noise_shape(noise, full)
        offset = len(full) - len(noise)
        for i, (d, size) in enumerate(zip(noise, concrete)):
            axis = offset + i
            if d is None and offset == 0:
                continue
            target = full[axis]
            if size == 1 or (size is not None and size == target):
                continue
            if d is None:
                msg = (f"Dropout noise_shape {noise}: its None at index {i} takes the size of input "
                       f"axis {i} ({'unknown' if size is None else size}), but with {len(noise)} "
                       f"entries for {len(full)} axes it lines up with axis {axis}")
                note = "give one entry per axis, batch first, e.g. (None, 1, 1, None)"
            elif target is None:
                what = "the batch axis" if axis == 0 else f"axis {axis}"
                msg = (f"Dropout noise_shape {noise}: size {size} meets {what}, whose size is "
                       f"known only when training")
                note = "use None (the input's size) or 1 (shared) there"
            else:
                msg = (f"Dropout noise_shape {noise}: size {size} does not fit axis {axis} of its "
                       f"input {sh.fmt_shape(x.shape)} (size {target})")
                note = "each entry must be None (the input's size), 1 (shared) or the input's size"
            raise ShapeError(msg, span, note, "Keras fails on it when training")
    return LayerInfo(layer, x, x, (), 0)


RULES: dict[str, Rule] = {
    "conv": conv,
    "depthwise_conv": depthwise_conv,
    "separable_conv": separable_conv,
    "max_pool": max_pool,
    "avg_pool": avg_pool,
    "global_max_pool": global_max_pool,
    "global_avg_pool": global_avg_pool,
    "flatten": flatten,
    "dense": dense,
    "dropout": dropout,
    "spatial_dropout": spatial_dropout,
    "batch_norm": batch_norm,
    "activation": activation,
    "zero_padding": zero_padding,
    "reshape": reshape,
    "conv_transpose": conv_transpose,
    "up_sampling": up_sampling,
    "cropping": cropping,
    "resizing": resizing,
    "relu": elementwise,
    "leaky_relu": elementwise,
    "prelu": prelu,
    "elu": elementwise,
    "softmax": softmax,
    "identity": elementwise,
    "rescaling": rescaling,
    "normalization": normalization,
    "layer_norm": layer_norm,
    "layer_scale": layer_scale,
}


def input_flow(shape: tuple[int | None, ...]) -> Flow:
    spatial = len(shape) - 1
    if spatial < 1:
        return Flow(tuple(shape))
    return Flow(tuple(shape), (1,) * spatial, (1,) * spatial)


def infer(model: ModelIR, rep: Reporter, stop_after_line: int | None = None) -> Analysis:
    """Run every layer's rule in graph order; report shape errors and warnings to
    `rep`. Layers written after `stop_after_line` (where a statement failed to
    parse) get no shapes: what flows into them is unknown. Layers that reach no
    output are checked too (Keras checks a layer when it is called), but are not
    part of the Analysis."""
    flows: dict[str, Flow | None] = {n.name: input_flow(n.shape) for n in model.inputs}
    infos: list[LayerInfo] = []
    complete = bool(model.inputs) and bool(model.outputs)
    live = len(model.layers)
    for k, layer in enumerate((*model.layers, *model.detached)):
        info = _infer_layer(model, layer, flows, rep, stop_after_line)
        flows[layer.name] = info.output if info is not None else None
        if k < live:
            if info is None:
                complete = False
            else:
                infos.append(info)
    return Analysis(model, tuple(infos), complete)


def _infer_layer(model: ModelIR, layer: Layer, flows: dict[str, Flow | None], rep: Reporter,
                 stop_after_line: int | None) -> LayerInfo | None:
    xs = [flows.get(src) for src in model.inputs_of(layer)]
    if stop_after_line is not None and layer.span.line > stop_after_line:
        return None
    if not xs or any(x is None for x in xs) or not layer.valid:
        return None
    try:
        if layer.spec.multi_input:
            info = RULES[layer.family](layer, xs, _Provenance(model, flows))
        else:
            info = RULES[layer.family](layer, xs[0])
    except ShapeError as e:
        rep.error(e.message, e.span or layer.span, *e.notes)
        return None
    for message, notes in info.warnings:
        rep.warning(message, layer.span, *notes)
    return info


# --- merges: several tensors in, one out -------------------------------------------------

class _Provenance:
    """Why a tensor has the size it has on one axis: the layer that last changed it."""

    def __init__(self, model: ModelIR, flows: dict[str, Flow | None]):
        self.model, self.flows = model, flows

    def explain(self, tensor: str, axis: int) -> str:
        """`axis` counts sample axes (batch left out); a note for the message."""
        name = tensor
        for _ in range(10_000):      # bounded: a graph is finite, and so is patience
            node = self.model.input_node(name)
            shape = self.flows[name].shape
            if node is not None:
                return f"'{tensor}' is {sh.fmt_shape(shape)}: the input '{name}' (line {node.span.line if node.span else '?'}) has {shape[axis]} there"
            layer = self.model.layer(name) if name in self.model._by_name else _detached(self.model, name)
            if layer is None:
                break
            src = layer.inputs[0]
            before = self.flows.get(src)
            if before is None or len(before.shape) != len(shape) or before.shape[axis] != shape[axis]:
                what = "its shape" if before is None or len(before.shape) != len(shape) else \
                    f"{before.shape[axis]} into {shape[axis]}"
                return (f"'{tensor}' is {sh.fmt_shape(shape)}: {layer.kind} '{layer.name}' on line "
                        f"{layer.span.line} turned {what}{_cause(layer)}")
            name = src
        return f"'{tensor}' is {sh.fmt_shape(self.flows[tensor].shape)}"


def _detached(model: ModelIR, name: str) -> Layer | None:
    return next((l for l in model.detached if l.name == name), None)


def _cause(layer: Layer) -> str:
    args = layer.args
    for key in ("strides", "pool_size", "size", "cropping", "padding"):
        v = args.get(key)
        if v is not None and v != (1,) * len(v if isinstance(v, tuple) else ()):
            if key == "padding" and isinstance(v, str):
                return f" (padding='{v}')"
            return f" ({key}={sh.fmt_size(v) if isinstance(v, tuple) and all(isinstance(i, int) for i in v) else v})"
    if "filters" in args:
        return f" (filters={args['filters']})"
    if "units" in args:
        return f" (units={args['units']})"
    return ""


def _merge_error(layer: Layer, xs: Sequence[Flow], i: int, j: int, axis: int, why: _Provenance,
                 message: str) -> ShapeError:
    a, b = layer.inputs[i], layer.inputs[j]
    notes = [why.explain(a, axis + len(xs[i].shape) if axis < 0 else axis),
             why.explain(b, axis + len(xs[j].shape) if axis < 0 else axis)]
    return ShapeError(message, layer.input_span(j), *notes)


def merge(layer: Layer, xs: Sequence[Flow], why: _Provenance) -> LayerInfo:
    """Add, Subtract, Multiply, Average, Maximum, Minimum: Keras broadcasts the sample
    shapes from the last axis (a size 1 stretches; None matches anything)."""
    out: tuple[int | None, ...] = xs[0].shape
    for j in range(1, len(xs)):
        other = xs[j].shape
        n = max(len(out), len(other))
        a = out
        merged: list[int | None] = []
        for axis in range(-n, 0):
            p = a[axis] if -axis <= len(a) else 1
            q = other[axis] if -axis <= len(other) else 1
            if p is None or q is None:
                merged.append(None)
            elif p == q or q == 1:
                merged.append(p)
            elif p == 1:
                merged.append(q)
            else:
                i = _culprit(xs[:j], axis, p)
                raise _merge_error(layer, xs, i, j, axis, why,
                                   f"{layer.kind} cannot merge {sh.fmt_shape(xs[i].shape)} "
                                   f"(from '{layer.inputs[i]}') with {sh.fmt_shape(other)} "
                                   f"(from '{layer.inputs[j]}'): sizes {p} and {q} differ on "
                                   f"axis {n + axis + 1}")
        out = tuple(merged)
    return LayerInfo(layer, xs[0], Flow(out, *_merged_rf(xs)), (), 0, inputs=tuple(xs))


def _culprit(xs: Sequence[Flow], axis: int, size: int) -> int:
    """Which earlier input gave the merged size on this axis."""
    for i, x in enumerate(xs):
        if len(x.shape) >= -axis and x.shape[axis] == size:
            return i
    return 0


def _merged_rf(xs: Sequence[Flow]) -> tuple:
    """The receptive field of a merge: the widest of its inputs (they are summed)."""
    if any(x.rf is None or x.jump is None for x in xs) or len({len(x.rf) for x in xs}) != 1:
        return None, None
    return (tuple(max(r) for r in zip(*(x.rf for x in xs))),
            tuple(max(j) for j in zip(*(x.jump for x in xs))))


def concatenate(layer: Layer, xs: Sequence[Flow], why: _Provenance) -> LayerInfo:
    """Keras's Concatenate: equal ranks, equal sizes except on `axis` (None matches)."""
    rank = len(xs[0].shape) + 1
    axis = layer["axis"]
    for j, x in enumerate(xs[1:], 1):
        if len(x.shape) + 1 != rank:
            raise ShapeError(f"Concatenate needs inputs of one rank, got {sh.fmt_shape(xs[0].shape)} "
                             f"(from '{layer.inputs[0]}') and {sh.fmt_shape(x.shape)} "
                             f"(from '{layer.inputs[j]}')", layer.input_span(j),
                             "Flatten or Reshape one of them first")
    a = _feature_axis(layer, xs[0].shape, "concatenate along",
                      "concatenate channels with axis=-1")
    out = list(xs[0].shape)
    for j, x in enumerate(xs[1:], 1):
        for k, (p, q) in enumerate(zip(out, x.shape)):
            if k == a - 1 or p is None or q is None or p == q:
                continue
            i = 0       # the first input sets every other axis
            raise _merge_error(layer, xs, i, j, k, why,
                               f"Concatenate(axis={axis}) needs equal sizes on every other axis: "
                               f"{sh.fmt_shape(xs[i].shape)} (from '{layer.inputs[i]}') and "
                               f"{sh.fmt_shape(x.shape)} (from '{layer.inputs[j]}') differ on axis "
                               f"{k + 1} ({p} vs {q})")
    sizes = [x.shape[a - 1] for x in xs]
    out[a - 1] = None if None in sizes else sum(sizes)
    return LayerInfo(layer, xs[0], Flow(tuple(out), *_merged_rf(xs) if a == rank - 1 else (None, None)),
                     (), 0, inputs=tuple(xs))


def tensor_op(layer: Layer, xs: Sequence[Flow], why: _Provenance) -> LayerInfo:
    """Arithmetic on tensors (`x + 3.0`, `x * y`): NumPy broadcasting of whole tensors,
    batch axis included, so two tensors must have one rank (Keras would line a lower
    rank up against the wrong axes)."""
    if len(xs) == 1:
        return LayerInfo(layer, xs[0], xs[0], (), 0, inputs=tuple(xs))
    a, b = xs
    if len(a.shape) != len(b.shape):
        raise ShapeError(f"{layer.kind} of tensors of different ranks: {sh.fmt_shape(a.shape)} "
                         f"(from '{layer.inputs[0]}') and {sh.fmt_shape(b.shape)} "
                         f"(from '{layer.inputs[1]}')", layer.span,
                         "Reshape one of them to the other's rank (e.g. (1, 1, C) for a channel vector)")
    return merge(layer, xs, why)


RULES.update(merge=merge, concatenate=concatenate, tensor_op=tensor_op)
