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
from typing import Callable, Sequence

from . import shapes as sh
from .arguments import Initializer, Regularizer
from .diagnostics import Reporter, Span
from .ir import INPUT, Layer, ModelIR

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

    @property
    def name(self) -> str:
        return self.layer.name

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
    infos: tuple[LayerInfo, ...]
    complete: bool          # False when some layer's shape could not be inferred

    def info(self, name: str) -> LayerInfo:
        for i in self.infos:
            if i.name == name:
                return i
        raise KeyError(name)

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


dropout = _identity
activation = _identity


def spatial_dropout(layer: Layer, x: Flow) -> LayerInfo:
    _need_rank(layer, x, layer.rank)
    return LayerInfo(layer, x, x, (), 0)


def batch_norm(layer: Layer, x: Flow) -> LayerInfo:
    full_rank = len(x.shape) + 1
    axis = layer["axis"]
    if not -full_rank <= axis < full_rank:
        raise ShapeError(f"BatchNormalization axis={axis} is out of range for a {full_rank}-D input "
                         f"{sh.fmt_shape(x.shape)}", layer.span_of("axis"))
    axis = axis % full_rank
    if axis == 0:
        raise ShapeError("BatchNormalization cannot normalise over the batch axis (axis=0)",
                         layer.span_of("axis"))
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
}


def input_flow(shape: tuple[int | None, ...]) -> Flow:
    spatial = len(shape) - 1
    if spatial < 1:
        return Flow(tuple(shape))
    return Flow(tuple(shape), (1,) * spatial, (1,) * spatial)


def infer(model: ModelIR, rep: Reporter, stop_after_line: int | None = None) -> Analysis:
    """Run every layer's rule; report shape errors and warnings to `rep`. Layers
    written after `stop_after_line` (where a statement failed to parse) get no
    shapes: what flows into them is unknown."""
    flows: dict[str, Flow | None] = {INPUT: input_flow(model.input_shape) if model.input_shape else None}
    infos: list[LayerInfo] = []
    complete = model.input_shape is not None
    for layer in model.layers:
        (src,) = model.inputs_of(layer)
        x = flows.get(src)
        if stop_after_line is not None and layer.span.line > stop_after_line:
            x = None
        if x is None or not layer.valid:
            flows[layer.name] = None
            complete = False
            continue
        try:
            info = RULES[layer.family](layer, x)
        except ShapeError as e:
            rep.error(e.message, e.span or layer.span, *e.notes)
            flows[layer.name] = None
            complete = False
            continue
        for message, notes in info.warnings:
            rep.warning(message, layer.span, *notes)
        flows[layer.name] = info.output
        infos.append(info)
    return Analysis(model, tuple(infos), complete)
