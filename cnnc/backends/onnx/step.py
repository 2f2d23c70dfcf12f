"""What a lowering rule works with: `Step`, one layer being lowered (the graph, its shape
info, its weights in Keras layout), and the window attributes of convolutions and pooling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from cnnc.analysis import shapes as sh
from cnnc.analysis.infer import LayerInfo
from cnnc.backends.onnx import activations
from cnnc.backends.onnx.graph import Graph, Value


@dataclass
class Step:
    """What a rule works with: one layer being lowered."""

    g: Graph
    info: LayerInfo
    weights: dict[str, np.ndarray]       # weight name ("kernel", "bias", ...) -> Keras array
    doc: str = ""
    pre_pads: tuple[tuple[int, int], ...] | None = None   # a ZeroPadding folded in (fold.py)

    def window(self, x: Value, k: Sequence[int], s: Sequence[int], d: Sequence[int],
               padding: str) -> dict:
        """_window for this layer, with a folded ZeroPadding's zeros added to its pads."""
        if self.pre_pads is None:
            return _window(x, k, s, d, padding)
        padded = Value(x.name, self.info.input_shape, x.layout)
        attrs = _window(padded, k, s, d, padding)
        r = len(self.pre_pads)
        attrs["pads"] = ([p + a for p, (a, _) in zip(attrs["pads"][:r], self.pre_pads)]
                         + [p + b for p, (_, b) in zip(attrs["pads"][r:], self.pre_pads)])
        return attrs

    @property
    def layer(self):
        return self.info.layer

    def node(self, op: str, inputs: Sequence[str], suffix: str, **attrs) -> str:
        return self.g.node(op, inputs, f"{self.info.name}/{suffix}", doc=self.doc, **attrs)

    def const(self, name: str, array, doc: str = "") -> str:
        return self.g.const(f"{self.info.name}/{name}", array, doc=doc)

    def ints(self, name: str, values: Sequence[int]) -> str:
        return self.g.ints(f"{self.info.name}/{name}", values)

    def activate(self, y: Value) -> Value:
        act = self.layer.args.get("activation", "linear")
        out = activations.apply(self.g, act, y.name, y.channel_axis(), self.info.name)
        return Value(out, y.shape, y.layout, y.image)


Rule = Callable[[Step, Value], Value]


def _window(x: Value, k: Sequence[int], s: Sequence[int], d: Sequence[int], padding: str) -> dict:
    """Conv/pool attributes. 'same' pads as TensorFlow (odd pixel after); 'causal' left only.

    Explicit pads when every size is known; SAME_UPPER (the same rule) when not.
    """
    pads = [sh.pads(n, kk, ss, dd, padding) for n, kk, ss, dd in zip(x.shape[:-1], k, s, d)]
    attrs = {"kernel_shape": list(k), "strides": list(s)}
    if any(p is None for p in pads):
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        attrs["pads"] = [p[0] for p in pads] + [p[1] for p in pads]
    return attrs
