"""Activations as standard ONNX ops: one rule per name in `analysis.activations.SUPPORTED`.

A rule gets the graph, the input tensor's name, the ONNX axis of Keras's last
(channel) axis (softmax and log_softmax act there) and a name prefix, and
returns the output tensor's name. Where an op only exists from some opset on
(Gelu 20, Mish 18, HardSwish 14) older opsets get the same function composed
from older ops.
"""

from __future__ import annotations

import math
from typing import Callable

from cnnc.analysis import activations as A
from cnnc.backends.onnx.graph import Graph

Rule = Callable[[Graph, str, int, str], str]


def _op(op: str, **attrs) -> Rule:
    def rule(g: Graph, x: str, axis: int, base: str) -> str:
        return g.node(op, [x], base, **attrs)
    return rule


def _on_axis(op: str) -> Rule:
    def rule(g: Graph, x: str, axis: int, base: str) -> str:
        return g.node(op, [x], base, axis=axis)
    return rule


def _clip(low: float, high: float) -> Rule:
    def rule(g: Graph, x: str, axis: int, base: str) -> str:
        return g.node("Clip", [x, g.const(f"{base}/min", low), g.const(f"{base}/max", high)], base)
    return rule


def linear(g: Graph, x: str, axis: int, base: str) -> str:
    return x


def silu(g: Graph, x: str, axis: int, base: str) -> str:
    return g.node("Mul", [x, g.node("Sigmoid", [x], f"{base}/sigmoid")], base)


def gelu(g: Graph, x: str, axis: int, base: str) -> str:
    """Keras 3's default exact gelu: x/2 * (1 + erf(x/sqrt(2)))."""
    if g.opset >= 20:
        return g.node("Gelu", [x], base)
    erf = g.node("Erf", [g.node("Mul", [x, g.const(f"{base}/rsqrt2", 1 / math.sqrt(2))],
                                f"{base}/scaled")], f"{base}/erf")
    one_plus = g.node("Add", [erf, g.const(f"{base}/one", 1.0)], f"{base}/one_plus")
    half_x = g.node("Mul", [x, g.const(f"{base}/half", 0.5)], f"{base}/half_x")
    return g.node("Mul", [half_x, one_plus], base)


def hard_silu(g: Graph, x: str, axis: int, base: str) -> str:
    """x * relu6(x + 3) / 6; HardSwish is exactly that."""
    if g.opset >= 14:
        return g.node("HardSwish", [x], base)
    hs = g.node("HardSigmoid", [x], f"{base}/hard_sigmoid", alpha=1 / 6, beta=0.5)
    return g.node("Mul", [x, hs], base)


def mish(g: Graph, x: str, axis: int, base: str) -> str:
    if g.opset >= 18:
        return g.node("Mish", [x], base)
    sp = g.node("Softplus", [x], f"{base}/softplus")
    return g.node("Mul", [x, g.node("Tanh", [sp], f"{base}/tanh")], base)


def log_sigmoid(g: Graph, x: str, axis: int, base: str) -> str:
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    neg = g.node("Neg", [x], f"{base}/neg")
    return g.node("Neg", [g.node("Softplus", [neg], f"{base}/softplus")], base)


RULES: dict[str, Rule] = {
    "linear": linear,
    "relu": _op("Relu"),
    "sigmoid": _op("Sigmoid"),
    "softmax": _on_axis("Softmax"),
    "tanh": _op("Tanh"),
    "elu": _op("Elu", alpha=A.ELU_ALPHA),
    "selu": _op("Selu", alpha=A.SELU_ALPHA, gamma=A.SELU_SCALE),
    "softplus": _op("Softplus"),
    "softsign": _op("Softsign"),
    "silu": silu,
    "gelu": gelu,
    "relu6": _clip(0.0, 6.0),
    "leaky_relu": _op("LeakyRelu", alpha=A.LEAKY_RELU_SLOPE),
    "hard_sigmoid": _op("HardSigmoid", alpha=1 / 6, beta=0.5),
    "exponential": _op("Exp"),
    "hard_silu": hard_silu,
    "mish": mish,
    "log_softmax": _on_axis("LogSoftmax"),
    "celu": _op("Celu", alpha=A.CELU_ALPHA),
    "hard_tanh": _clip(-1.0, 1.0),
    "log_sigmoid": log_sigmoid,
}


def apply(g: Graph, name: str, x: str, axis: int, base: str) -> str:
    return RULES[name](g, x, axis, f"{base}/{name}")
