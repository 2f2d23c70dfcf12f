"""Merge layers: several tensors in, one out, forward and backward side by side.

Keras broadcasts merge inputs from the last axis; a lower-rank input gets size-1
axes inserted after the batch axis (Keras's `expand_dims(x, 1)`), which is
what `_expand` does. Each backward sums the gradient over the axes an input
was broadcast along (`_unbroadcast`). Maximum and Minimum fold the inputs left
to right as Keras does, and a tie sends the gradient to the left operand, as
TensorFlow's Maximum/Minimum gradients do.
"""

from __future__ import annotations

import numpy as np

from cnnc.analysis.infer import LayerInfo

Array = np.ndarray


def _expand(xs: list[Array]) -> list[Array]:
    """Equal ranks: size-1 axes inserted after the batch axis of lower-rank inputs."""
    rank = max(x.ndim for x in xs)
    return [x.reshape(x.shape[0], *(1,) * (rank - x.ndim), *x.shape[1:]) if x.ndim < rank else x
            for x in xs]


def _unbroadcast(g: Array, shape: tuple[int, ...]) -> Array:
    """The gradient of an input of `shape` that was broadcast to g.shape."""
    rank = g.ndim
    full = (shape[0], *(1,) * (rank - len(shape)), *shape[1:])
    axes = tuple(i for i, (a, b) in enumerate(zip(full, g.shape)) if a == 1 and b != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


class Merge:
    """The machinery shared by merges: no weights, no activation."""

    multi_input = True
    activation = "linear"

    def __init__(self, info: LayerInfo):
        self.info = info
        self.layer = info.layer
        self.name = info.name
        self.trainable: set[str] = set()
        self.cache: dict = {}

    def forward(self, xs: list[Array], weights, training: bool = False, rng=None) -> Array:
        self.cache = {"shapes": [x.shape for x in xs]}
        ys = _expand(xs)
        y = self.combine(ys, training)
        self.cache["trained"] = training
        return y

    def backward(self, dy: Array, weights, skip_activation: bool = False,
                 need_dx: bool = True) -> tuple[list[Array] | None, dict]:
        if not self.cache.get("trained"):
            raise RuntimeError(f"layer '{self.name}': backward needs a forward(training=True) first")
        if not need_dx:
            return None, {}
        grads = self.split(dy)
        return [_unbroadcast(g, s) for g, s in zip(grads, self.cache["shapes"])], {}

    def combine(self, xs: list[Array], training: bool) -> Array:
        raise NotImplementedError

    def split(self, dy: Array) -> list[Array]:
        raise NotImplementedError


def _sum(xs: list[Array]) -> Array:
    """A new array: the inputs are never written to."""
    y = xs[0] + xs[1] if len(xs) > 1 else xs[0].copy()
    for x in xs[2:]:
        y += x
    return y


class Add(Merge):
    def combine(self, xs, training):
        self.cache["n"] = len(xs)
        return _sum(xs)

    def split(self, dy):
        return [dy] * self.cache["n"]


class Subtract(Merge):
    def combine(self, xs, training):
        return xs[0] - xs[1]

    def split(self, dy):
        return [dy, -dy]


class Average(Merge):
    def combine(self, xs, training):
        self.cache["n"] = len(xs)
        y = _sum(xs)
        return y * np.asarray(1.0 / len(xs), y.dtype) if len(xs) > 1 else y

    def split(self, dy):
        n = self.cache["n"]
        return [dy * np.asarray(1.0 / n, dy.dtype)] * n


class Multiply(Merge):
    def combine(self, xs, training):
        if training:
            self.cache["xs"] = xs
        y = xs[0]
        for x in xs[1:]:
            y = y * x
        return y.copy() if len(xs) == 1 else y

    def split(self, dy):
        xs = self.cache["xs"]
        out = []
        for i in range(len(xs)):
            g = dy
            for j, x in enumerate(xs):
                if j != i:
                    g = g * x
            out.append(g)
        return out


class _Extremum(Merge):
    """Maximum / Minimum folded left to right; ties go to the left operand."""

    pick = staticmethod(np.greater_equal)

    def combine(self, xs, training):
        y = xs[0]
        masks = []
        for x in xs[1:]:
            left = self.pick(y, x)       # where the running result wins
            y = np.where(left, y, x)
            masks.append(left)
        if training:
            self.cache["masks"] = masks
        return y.copy() if len(xs) == 1 else y

    def split(self, dy):
        masks = self.cache["masks"]
        grads: list[Array] = [None] * (len(masks) + 1)
        g = dy
        for k in range(len(masks) - 1, -1, -1):
            left = masks[k]
            grads[k + 1] = np.where(left, 0, g).astype(dy.dtype)
            g = np.where(left, g, 0).astype(dy.dtype)
        grads[0] = g
        return grads


class Maximum(_Extremum):
    pick = staticmethod(np.greater_equal)


class Minimum(_Extremum):
    pick = staticmethod(np.less_equal)


class Concatenate(Merge):
    def combine(self, xs, training):
        axis = self.layer["axis"] % xs[0].ndim
        self.cache["axis"] = axis
        self.cache["sizes"] = [x.shape[axis] for x in xs]
        return np.concatenate(xs, axis=axis)

    def split(self, dy):
        cuts = np.cumsum(self.cache["sizes"])[:-1]
        return [np.ascontiguousarray(g) for g in np.split(dy, cuts, axis=self.cache["axis"])]


class CustomScale(Merge):
    """InceptionResNetV2's CustomScaleLayer: x + up * scale."""

    def combine(self, xs, training):
        return xs[0] + xs[1] * np.asarray(self.layer["scale"], xs[1].dtype)

    def split(self, dy):
        return [dy, dy * np.asarray(self.layer["scale"], dy.dtype)]


class TensorOp(Merge):
    """Arithmetic on tensors: `x + c`, `c - x` (reverse), `x * y`, `x / c`, `-x`."""

    def combine(self, xs, training):
        c = self.layer["constant"]
        kind = self.layer.kind
        if kind == "Negative":
            return -xs[0]
        a = xs[0]
        b = np.asarray(c, a.dtype) if c is not None else xs[1]
        if c is not None and self.layer["reverse"]:
            a, b = b, a
        self.cache.update(a=a, b=b)
        return {"Add": np.add, "Subtract": np.subtract, "Multiply": np.multiply,
                "TrueDivide": np.divide}[kind](a, b)

    def split(self, dy):
        kind = self.layer.kind
        if kind == "Negative":
            return [-dy]
        a, b = self.cache["a"], self.cache["b"]
        if kind == "Add":
            da, db = dy, dy
        elif kind == "Subtract":
            da, db = dy, -dy
        elif kind == "Multiply":
            da, db = dy * b, dy * a
        else:
            da, db = dy / b, -dy * a / (b * b)
        if self.layer["constant"] is None:
            return [da, db]
        return [db if self.layer["reverse"] else da]


_ELEMENTWISE = {"Add": Add, "Subtract": Subtract, "Multiply": Multiply, "Average": Average,
                "Maximum": Maximum, "Minimum": Minimum}


def elementwise(info: LayerInfo) -> Merge:
    """The family "merge" holds six Keras classes; the kind picks the operation."""
    return _ELEMENTWISE[info.layer.kind](info)
