"""Keras 3 optimizers in NumPy: SGD, RMSprop, Adam (keras/src/optimizers/).

One `apply(grads, weights)` is one Keras `optimizer.apply`: the gradients are
clipped (clipnorm per variable, global_clipnorm, or clipvalue), decoupled
weight decay shrinks each variable (w -= w * weight_decay * lr), then each
optimizer's update rule runs, then `iterations` counts one step.

The learning rate of a step is Keras 2's `decay` schedule, which Keras 3 dropped
but tutorials still use: lr_t = lr / (1 + decay * iterations), iterations
counted before the step (the first step uses lr).

Updates happen in place on the weight arrays (the Network's dict) and keep
their dtype. Slots (momentums, velocities, ...) are created on first use and
round-trip through `state()` / `load_state()` for checkpoints.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

Arrays = dict[str, np.ndarray]


class Optimizer:
    name = "Optimizer"
    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate: float, decay: float = 0.0, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, **_ignored: Any):
        self.learning_rate = float(learning_rate)
        self.decay = float(decay or 0.0)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.iterations = 0
        self.slots: dict[str, Arrays] = {s: {} for s in self.slot_names}

    # --- the step -----------------------------------------------------------------

    def current_learning_rate(self) -> float:
        return self.learning_rate / (1.0 + self.decay * self.iterations)

    def apply(self, grads: Mapping[str, np.ndarray], weights: Arrays) -> None:
        """One step on every weight that has a gradient; updates `weights` in place."""
        grads = self.clip(dict(grads))
        lr = self.current_learning_rate()
        if self.weight_decay:
            for key in grads:
                w = weights[key]
                w -= w * (self.weight_decay * lr)
        for key, g in grads.items():
            self.update(key, g, weights[key], lr)
        self.iterations += 1

    def update(self, key: str, g: np.ndarray, w: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def slot(self, name: str, key: str, like: np.ndarray) -> np.ndarray:
        table = self.slots[name]
        if key not in table:
            table[key] = np.zeros_like(like)
        return table[key]

    # --- clipping (keras/src/optimizers/base_optimizer.py) ----------------------------

    def clip(self, grads: Arrays) -> Arrays:
        if self.clipnorm:
            return {k: _clip_by_norm(g, self.clipnorm) for k, g in grads.items()}
        if self.global_clipnorm:
            norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
            # Keras: scale = c * min(1/norm, 1/c); a NaN/inf norm makes the scale NaN.
            scale = self.global_clipnorm * min(1.0 / norm if norm else math.inf, 1.0 / self.global_clipnorm)
            if not math.isfinite(norm):
                scale = math.nan
            return {k: g * g.dtype.type(scale) for k, g in grads.items()}
        if self.clipvalue:
            v = self.clipvalue
            return {k: np.clip(g, -v, v) for k, g in grads.items()}
        return grads

    # --- checkpoints ------------------------------------------------------------------

    def state(self) -> tuple[dict[str, Any], Arrays]:
        """(JSON-able scalars, arrays keyed "slot:layer/weight")."""
        arrays = {f"{s}:{k}": a for s, table in self.slots.items() for k, a in table.items()}
        return {"name": self.name, "iterations": self.iterations}, arrays

    def load_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        if meta.get("name") != self.name:
            raise ValueError(f"optimizer state is for {meta.get('name')}, not {self.name}")
        self.iterations = int(meta["iterations"])
        self.slots = {s: {} for s in self.slot_names}
        for full, a in arrays.items():
            s, key = full.split(":", 1)
            if s not in self.slots:
                raise ValueError(f"{self.name} has no slot {s!r}")
            self.slots[s][key] = np.array(a)


def _clip_by_norm(g: np.ndarray, clipnorm: float) -> np.ndarray:
    norm = float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))
    # g * c / max(norm, c): unchanged when the norm is below c.
    return (g * clipnorm / max(norm, clipnorm)).astype(g.dtype, copy=False)


class SGD(Optimizer):
    """m = momentum*m - lr*g; w += m (nesterov: w += momentum*m - lr*g)."""

    name = "SGD"
    slot_names = ("momentum",)

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 **kw: Any):
        super().__init__(learning_rate, **kw)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def update(self, key, g, w, lr):
        if not self.momentum:
            w -= g * w.dtype.type(lr)
            return
        m = self.slot("momentum", key, w)
        m *= w.dtype.type(self.momentum)
        m -= g * w.dtype.type(lr)
        if self.nesterov:
            w += m * w.dtype.type(self.momentum) - g * w.dtype.type(lr)
        else:
            w += m


class RMSprop(Optimizer):
    """v = rho*v + (1-rho)*g^2 (centered: a = rho*a + (1-rho)*g, v - a^2);
    step = lr*g / sqrt(v + eps) (Keras 3 puts epsilon inside the root);
    with momentum: m = momentum*m + step; w -= m."""

    name = "RMSprop"
    slot_names = ("velocity", "momentum", "average_gradient")

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kw: Any):
        super().__init__(learning_rate, **kw)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)

    def update(self, key, g, w, lr):
        t = w.dtype.type
        v = self.slot("velocity", key, w)
        v *= t(self.rho)
        v += t(1.0 - self.rho) * np.square(g)
        if self.centered:
            a = self.slot("average_gradient", key, w)
            a *= t(self.rho)
            a += t(1.0 - self.rho) * g
            denom = v - np.square(a)
            denom += t(self.epsilon)
        else:
            denom = v + t(self.epsilon)
        np.sqrt(denom, out=denom)
        step = g * t(lr)
        step /= denom
        if self.momentum:
            m = self.slot("momentum", key, w)
            m *= t(self.momentum)
            m += step
            w -= m
        else:
            w -= step


class Adam(Optimizer):
    """m += (g - m)(1-b1); v += (g^2 - v)(1-b2) (amsgrad: v_hat = max(v_hat, v));
    w -= m * alpha / (sqrt(v) + eps), alpha = lr sqrt(1 - b2^t) / (1 - b1^t), t = iterations+1."""

    name = "Adam"
    slot_names = ("momentum", "velocity", "velocity_hat")

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kw: Any):
        super().__init__(learning_rate, **kw)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.amsgrad = bool(amsgrad)

    def update(self, key, g, w, lr):
        t = w.dtype.type
        step = self.iterations + 1
        alpha = lr * math.sqrt(1.0 - self.beta_2 ** step) / (1.0 - self.beta_1 ** step)
        m = self.slot("momentum", key, w)
        v = self.slot("velocity", key, w)
        m += (g - m) * t(1.0 - self.beta_1)
        v += (np.square(g) - v) * t(1.0 - self.beta_2)
        if self.amsgrad:
            v_hat = self.slot("velocity_hat", key, w)
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        denom = np.sqrt(v)
        denom += t(self.epsilon)
        w -= (m * t(alpha)) / denom


OPTIMIZERS: dict[str, type[Optimizer]] = {"SGD": SGD, "RMSprop": RMSprop, "Adam": Adam}


def from_spec(spec, learning_rate: float | None = None) -> Optimizer:
    """An optimizer from a compile_spec.OptimizerSpec (learning_rate overrides the file's)."""
    params = dict(spec.params)
    if learning_rate is not None:
        params["learning_rate"] = learning_rate
    for unused in ("use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                   "gradient_accumulation_steps", "name", "lr"):
        params.pop(unused, None)
    return OPTIMIZERS[spec.name](**params)
