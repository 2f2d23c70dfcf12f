"""What several rules share: rank checks, sliding-window arithmetic and its messages,
receptive fields, weights with their initializer and regularizer, MACs."""

from __future__ import annotations

import math
import re
from typing import Callable, Sequence

from cnnc.analysis import shapes as sh
from cnnc.analysis.constraints import Check, Unsatisfiable
from cnnc.analysis.infer.core import CONSTRAINTS, Flow, LayerInfo, ShapeError, Weight
from cnnc.analysis.ir import Layer
from cnnc.analysis.kinds import KINDS
from cnnc.analysis.symbolic import Expr, floor_div, render

_AXES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}


_LAYOUT = {1: "(batch, steps, channels)", 2: "(batch, height, width, channels)",
           3: "(batch, depth, height, width, channels)"}


def need(layer: Layer, terms: Sequence[tuple[object, str]], text: str | Callable[[], str],
         on_fail: Callable[[], ShapeError]) -> None:
    """A size check that depends on open dimensions: it holds when any of `terms` holds
    (`expr >= 0` for "ge", `expr == 0` for "eq"). Recorded as a constraint of the model;
    `on_fail()` is raised when no value satisfies it, and a ShapeError naming both sides
    when no value satisfies it together with the checks of earlier layers."""
    constraints = CONSTRAINTS.get()
    check = Check(tuple(terms), text, layer.name, layer.span.line if layer.span else None)
    if constraints is None:          # outside a model's inference: decide it for every value
        if check.solve() is not None and check.solve().empty:
            raise on_fail()
        return
    try:
        ok = constraints.require(check)
    except Unsatisfiable as e:
        earlier = [c for c in constraints.checks_of(e.dim)][:3]
        raise ShapeError(f"{layer.kind} needs {check.text}, which holds only for {e.dim}: {e.alone.describe()}; "
                         f"the layers before it need {e.dim}: {e.before.describe()}, and no size "
                         "is both", layer.span,
                         *[f"'{c.layer}' (line {c.line}) needs {c.text}" for c in earlier]) from None
    if not ok:
        raise on_fail()


def divisible(layer: Layer, n, k: int, text: str | Callable[[], str], on_fail: Callable[[], ShapeError]) -> None:
    """`n` a multiple of `k`, n an open size."""
    need(layer, [(n - k * floor_div(n, k), "eq")], text, on_fail)


def at_least(layer: Layer, n, k: int, text: str | Callable[[], str], on_fail: Callable[[], ShapeError]) -> None:
    need(layer, [(n - k, "ge")], text, on_fail)


def equal(layer: Layer, a, b, text: str | Callable[[], str], on_fail: Callable[[], ShapeError],
          broadcast: bool = False) -> None:
    """a == b (or, where arrays broadcast, either is 1)."""
    terms = [(a - b, "eq")]
    if broadcast:
        terms += [(a - 1, "eq"), (b - 1, "eq")]
    need(layer, terms, text, on_fail)


def is_open(n) -> bool:
    return isinstance(n, Expr)


def _need_rank(layer: Layer, x: Flow, rank: int) -> None:
    """Keras's InputSpec(ndim=rank+2): the sample must be (*spatial, channels)."""
    if len(x.shape) != rank + 1:
        got = sh.fmt_shape(x.shape)
        hint = _rank_hint(x, rank, layer.kind)
        raise ShapeError(f"{layer.kind} expects a {rank + 2}-D input {_LAYOUT[rank]}, "
                         f"got {len(x.shape) + 1}-D {got}", layer.span, hint)


def _rank_hint(x: Flow, rank: int, layer_kind: str = "") -> str:
    n = sh.numel(x.shape)
    if len(x.shape) < rank + 1 and isinstance(n, int):
        guess = _guess_reshape(n, rank)
        if guess:
            return f"add a Reshape before it, e.g. Reshape({guess})"
        return (f"add a Reshape to {rank} spatial axes and channels before it (the sizes must "
                f"multiply to {n}), or, if a Flatten or Dense made it {len(x.shape) + 1}-D, "
                "remove it")
    if len(x.shape) > rank + 1:
        # Flatten would make it 2-D, which no layer that needs spatial axes takes: only a
        # variant of the right rank (when Keras has one) or a Reshape that merges axes helps.
        hints = []
        variant = re.sub(r"[123]D", f"{len(x.shape) - 1}D", layer_kind) if layer_kind else ""
        if variant != layer_kind and variant in KINDS:
            hints.append(f"use {variant} instead")
        keep = len(x.shape) - rank            # leading axes merged into the first one
        if all(isinstance(n, int) for n in x.shape[:keep]):
            merged = (math.prod(x.shape[:keep]), *x.shape[keep:])
            hints.append(f"add a Reshape before it that merges axes, e.g. Reshape({sh.fmt_shape(merged, batch=False)})")
        return "; or ".join(hints)
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
    if sh.undefined(c):
        raise ShapeError(f"{layer.kind} needs the channel dimension to be known, got None",
                         layer.span, "Keras refuses an undefined channel axis too")
    return c


def _spatial_out(layer: Layer, x: Flow, k: Sequence[int], s: Sequence[int], d: Sequence[int],
                 padding: str, pooling: bool) -> tuple[int | None, ...]:
    spatial = x.shape[:-1]
    out = tuple(sh.pool_output_length(n, kk, ss, padding) if pooling
                else sh.conv_output_length(n, kk, ss, dd, padding)
                for n, kk, ss, dd in zip(spatial, k, s, d))
    bad = [i for i, o in enumerate(out) if isinstance(o, int) and o <= 0]
    if bad:
        raise _too_small(layer, spatial, k, s, d, out, bad, pooling)
    for i, o in enumerate(out):
        if is_open(o):
            what = "pool_size" if pooling else "kernel_size"
            at_least(layer, o, 1, lambda i=i, o=o, what=what: (
                         f"the output {_AXES[len(spatial)][i]} {render(o)} >= 1 "
                         f"({what} {k[i]} on {render(spatial[i])})"),
                     lambda i=i: _too_small(layer, spatial, k, s, d, out, [i], pooling))
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
        formula = f"floor(({render(spatial[i])} - {k[i]}) / {s[i]}) + 1 = {render(out[i])}"
    else:
        formula = (f"floor(({render(spatial[i])} - {d[i]}*({k[i]}-1) - 1) / {s[i]}) + 1 = "
                   f"{render(out[i])}")
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


def _macs(out_spatial: Sequence[sh.Size], per_position) -> sh.Size:
    n = sh.numel(out_spatial)
    return None if n is None else n * per_position


def _identity(layer: Layer, x: Flow) -> LayerInfo:
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
