"""Rules for the elementwise and normalisation layers: ReLU ... ELU, PReLU, Softmax,
Identity, Rescaling, Normalization, LayerNormalization, LayerScale, Dropout; and the
data augmentation and noise layers (RandomFlip ..., GaussianNoise ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from cnnc.analysis import shapes as sh
from cnnc.analysis.arguments import Initializer
from cnnc.analysis.infer.common import _weight
from cnnc.analysis.infer.core import Flow, LayerInfo, ShapeError, Weight
from cnnc.analysis.ir import Layer
from cnnc.analysis.kinds import array_shape


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
            if not isinstance(n, int):
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
        what = "the batch axis" if axis == 0 else f"axis {axis} (size {'unknown' if sh.undefined(target) else target})"
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
    unknown = [i + 1 for i, n in enumerate(shape) if sh.undefined(n)]
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
        if sh.undefined(full[a]):
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
        if a == 0 or sh.undefined(full[a]):
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
                         f"use projection_dim={c}" if not sh.undefined(c) else
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
    _check_noise_shape(layer, x)
    return LayerInfo(layer, x, x, (), 0)


def _check_noise_shape(layer: Layer, x: Flow) -> None:
    """Dropout's and AlphaDropout's noise_shape must broadcast to the input (Keras fails
    on it when training)."""
    noise = layer.args.get("noise_shape")
    if noise is not None:
        full = _full(x)
        span = layer.span_of("noise_shape")
        if len(noise) > len(full):
            raise ShapeError(f"{layer.kind} noise_shape {noise} has {len(noise)} entries, more than the "
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
                msg = (f"{layer.kind} noise_shape {noise}: its None at index {i} takes the size of input "
                       f"axis {i} ({'unknown' if sh.undefined(size) else size}), but with {len(noise)} "
                       f"entries for {len(full)} axes it lines up with axis {axis}")
                note = "give one entry per axis, batch first, e.g. (None, 1, 1, None)"
            elif sh.undefined(target):
                what = "the batch axis" if axis == 0 else f"axis {axis}"
                msg = (f"{layer.kind} noise_shape {noise}: size {size} meets {what}, whose size is "
                       f"known only when training")
                note = "use None (the input's size) or 1 (shared) there"
            else:
                msg = (f"{layer.kind} noise_shape {noise}: size {size} does not fit axis {axis} of its "
                       f"input {sh.fmt_shape(x.shape)} (size {target})")
                note = "each entry must be None (the input's size), 1 (shared) or the input's size"
            raise ShapeError(msg, span, note, "Keras fails on it when training")


# --- data augmentation and noise: the identity at inference (and in cnnc's training) -----

def augment(layer: Layer, x: Flow) -> LayerInfo:
    """RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast,
    RandomBrightness: no weights, the shape unchanged (Keras's compute_output_shape).
    Keras's image layers take images (height, width, channels): a batch of rank 4, or a
    rank-3 tensor, which they read as one image."""
    n = len(x.shape)
    if n not in (2, 3):
        raise ShapeError(f"{layer.kind} needs images (height, width, channels), got an input "
                         f"of shape {sh.fmt_shape(x.shape)}", layer.span,
                         "Keras's image preprocessing layers take a batch of images (rank 4); "
                         "Keras builds this model but fails when it runs")
    warnings = ()
    if n == 2:
        warnings = ((f"{layer.kind} on an input of shape {sh.fmt_shape(x.shape)}: Keras reads "
                     "the whole batch as one image whose height is the batch size",
                     ("when training, Keras would transform across the samples; give it "
                      "images (height, width, channels)",)),)
    return LayerInfo(layer, x, x, (), 0, warnings)


def noise(layer: Layer, x: Flow) -> LayerInfo:
    """GaussianNoise, GaussianDropout, AlphaDropout: no weights, the shape unchanged;
    AlphaDropout's noise_shape is checked as Dropout's."""
    _check_noise_shape(layer, x)
    return LayerInfo(layer, x, x, (), 0)
