"""Keras's weight regularizers in training: the penalty added to the loss and its gradient.

Keras 3 (keras/src/regularizers): L1 `l1 * sum(|w|)`, L2 `l2 * sum(w**2)`, L1L2
both. The penalties of *trainable* weights are added to the loss Keras reports,
in training and in evaluation alike; frozen weights carry none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from cnnc.analysis.infer import Analysis


@dataclass(frozen=True)
class Term:
    key: str            # "layer/weight"
    l1: float
    l2: float


def terms(analysis: Analysis) -> tuple[Term, ...]:
    return tuple(Term(f"{info.name}/{w.name}", w.regularizer.l1, w.regularizer.l2)
                 for info in analysis.infos for w in info.weights
                 if w.trainable and w.regularizer is not None
                 and (w.regularizer.l1 or w.regularizer.l2))


def penalty(weights: Mapping[str, np.ndarray], regs: tuple[Term, ...]) -> float:
    total = 0.0
    for t in regs:
        w = weights[t.key]
        if t.l1:
            total += t.l1 * float(np.abs(w).sum())
        if t.l2:
            total += t.l2 * float(np.square(w).sum())
    return total


def add_gradients(grads: dict[str, np.ndarray], weights: Mapping[str, np.ndarray],
                  regs: tuple[Term, ...]) -> None:
    """grads[key] += l1 * sign(w) + 2 * l2 * w (sign(0) = 0, as TensorFlow's |x|')."""
    for t in regs:
        w = weights[t.key]
        extra = np.zeros_like(w)
        if t.l1:
            extra += w.dtype.type(t.l1) * np.sign(w)
        if t.l2:
            extra += w.dtype.type(2 * t.l2) * w
        grads[t.key] = grads[t.key] + extra
